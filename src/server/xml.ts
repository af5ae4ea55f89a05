import { XMLBuilder } from 'fast-xml-parser';

/**
 * The one XML writer of the endpoint (EC2's and STS's Query answers, errors
 * included). Every text node and attribute value goes through the builder's
 * entity table, which is this file's: the five XML escapes, CR as `&#xD;` (a
 * parser would otherwise read it as LF), and, for what XML 1.0 cannot carry
 * at all (C0 controls other than tab, LF and CR; U+FFFE, U+FFFF; a lone
 * UTF-16 surrogate, which UTF-8 cannot encode), U+FFFD. Inputs with such
 * characters are refused before they are stored (src/volume/text.ts), so the
 * replacement only guards what was stored before that rule, or echoes of a
 * refused value in an error message: an answer always parses.
 *
 * Element names are never data: they come from the operations' output shapes.
 */
const ENTITIES = [
  { regex: /&/g, val: '&amp;' },
  { regex: />/g, val: '&gt;' },
  { regex: /</g, val: '&lt;' },
  { regex: /'/g, val: '&apos;' },
  { regex: /"/g, val: '&quot;' },
  { regex: /\r/g, val: '&#xD;' },
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters XML 1.0 cannot carry
  { regex: /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|\p{Cs}/gu, val: '\ufffd' },
];

/** Attributes are written with this prefix (`{ '@_xmlns': … }`). */
export const ATTRIBUTE = '@_';

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: ATTRIBUTE,
  suppressEmptyNode: false,
  format: false,
  processEntities: true,
  entities: ENTITIES,
} as ConstructorParameters<typeof XMLBuilder>[0]);

/** `<?xml version="1.0" encoding="UTF-8"?>` followed by the document, every value escaped. */
export function xmlDocument(doc: Record<string, unknown>): string {
  return builder.build({ '?xml': { [`${ATTRIBUTE}version`]: '1.0', [`${ATTRIBUTE}encoding`]: 'UTF-8' }, ...doc });
}
