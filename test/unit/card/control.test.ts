import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { serveControl } from '../../../src/card/control.js';
import { cardOps } from '../../../src/card/images.js';
import { socketPath } from '../../../src/card/runtime.js';
import { ServiceError } from '../../../src/errors.js';
import { ensureDir, openHome } from '../../../src/home.js';
import { InProcessKmsClient } from '../../../src/kms/client/index.js';
import { Ec2Errors } from '../../../src/volume/errors.js';
import { tempHome } from '../../helpers/home.js';

const closers: (() => void)[] = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

describe("a card's error reply on its control socket", () => {
  it('reaches the control plane as the typed error it names (so the endpoint answers its EC2 code, not InternalError)', async () => {
    const home = openHome(tempHome());
    ensureDir(home.runDir);
    const vol = 'vol-0123456789abcdef0';
    // A real control socket whose card refuses: a freeze while frozen, a resize it cannot serve.
    const server = serveControl(socketPath(home, vol), async (req) => {
      throw Ec2Errors.incorrectState(`Volume ${vol} refuses ${req.op}.`);
    });
    closers.push(() => server.close());
    await once(server, 'listening');
    const kms = InProcessKmsClient.open({ home });
    closers.push(() => kms.close());
    const ops = cardOps(home, kms);
    for (const call of [() => ops.quiesce(vol), () => ops.resize(vol, 2 << 30)]) {
      const e = await call().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ServiceError);
      expect(e).toMatchObject({ name: 'IncorrectState', httpStatus: 400 });
      expect((e as Error).message).toMatch(new RegExp(`^Volume ${vol} refuses (freeze|resize)\\.$`));
    }
  });
});
