import { Ec2Errors } from './errors.js';

/**
 * Precondition: every string an EC2 request carries is text XML 1.0 can
 * carry. EC2 answers in XML, and a value stored with a C0 control character
 * (other than tab, LF and CR), U+FFFE, U+FFFF or a lone UTF-16 surrogate
 * could not be written back in any answer: before this rule, one such tag
 * value made every later DescribeVolumes unparseable for every client.
 * Refused with InvalidParameterValue naming the parameter, before anything
 * is stored. The endpoint applies it to every string parameter as it decodes
 * the request (src/server/ec2/protocol.ts); the control plane applies it to
 * every string it stores (tags, Availability Zone, client token,
 * description), so the CLI and the TypeScript API meet the same rule.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters refused
const NOT_XML_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|\p{Cs}/u;

/** `value` shown in a message: at most 64 characters, anything unprintable as \uXXXX. */
export function shown(value: string): string {
  const cut = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this makes visible
  return cut.replace(/[\u0000-\u001f\u007f\ufffe\uffff]|\p{Cs}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Throws InvalidParameterValue when `value` (the parameter `parameter`) holds a character XML 1.0 cannot carry. */
export function checkText(parameter: string, value: string | undefined): void {
  if (value === undefined) return;
  const hit = NOT_XML_TEXT.exec(value);
  if (!hit) return;
  const code = hit[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  throw Ec2Errors.invalidParameter(
    `Value (${shown(value)}) for parameter ${parameter} is invalid. It contains the character U+${code} at offset ${hit.index}, which is not allowed: remove control characters (other than tab, LF and CR) from the value.`,
  );
}
