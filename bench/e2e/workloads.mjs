// The e2e bench's workloads: what users do on a volume. Each takes a target
// (its directory; its device for mkfs) and returns one figure, higher is
// better unless `lower`. `cold`: the page cache is dropped before the job.
// Inputs the job reads (a 1 GiB file, the tarball of node_modules) live in
// the work directory, on the same file system as the targets.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, sh } from './sys.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;

async function fio(args) {
  const out = await run('fio', ['--output-format=json', '--name=job', ...args]);
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
}

/** Seconds a function takes. */
async function seconds(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** The jobs, in the order a repetition runs them (later ones read what earlier ones wrote). */
export function workloads(cfg) {
  const size = `--size=${cfg.fileMiB}M`;
  const timed = ['--time_based', `--runtime=${cfg.runtime}`];
  const psync = ['--ioengine=psync'];
  const aio = ['--ioengine=libaio', '--iodepth=16', '--direct=1'];
  const file = (t) => `--filename=${path.join(t.dir, 'fio.bin')}`;
  return [
    {
      name: 'mkfs',
      label: 'mkfs.ext4 (defaults) + mount, then until the device is idle',
      unit: 's',
      lower: true,
      blockOnly: true,
      run: async (t) => {
        const s0 = await seconds(() => t.mkfs());
        return s0 + (await seconds(() => idle(t.dev)));
      },
    },
    {
      name: 'seqWrite',
      label: 'buffered seq write 1 MiB, fsync at end',
      unit: 'MiB/s',
      run: async (t) => (await fio([file(t), ...psync, '--rw=write', '--bs=1M', size, '--end_fsync=1'])).write.bw / 1024,
    },
    {
      name: 'seqRead',
      needs: 'seqWrite', // it works on what seqWrite left
      label: 'buffered seq read 1 MiB, cold',
      unit: 'MiB/s',
      cold: true,
      run: async (t) => (await fio([file(t), ...psync, '--rw=read', '--bs=1M', size])).read.bw / 1024,
    },
    {
      name: 'randRead',
      needs: 'seqWrite', // it works on what seqWrite left
      label: 'rand read 4 KiB QD1, cold',
      unit: 'IOPS',
      cold: true,
      run: async (t) => (await fio([file(t), ...psync, '--rw=randread', '--bs=4k', size, ...timed])).read.iops,
    },
    {
      name: 'randWrite',
      needs: 'seqWrite', // it works on what seqWrite left
      label: 'rand write 4 KiB QD1, fsync every 32',
      unit: 'IOPS',
      run: async (t) => (await fio([file(t), ...psync, '--rw=randwrite', '--bs=4k', size, ...timed, '--fsync=32'])).write.iops,
    },
    {
      name: 'randReadQd16',
      needs: 'seqWrite', // it works on what seqWrite left
      label: 'rand read 4 KiB QD16 O_DIRECT',
      unit: 'IOPS',
      cold: true,
      run: async (t) => (await fio([file(t), ...aio, '--rw=randread', '--bs=4k', size, ...timed])).read.iops,
    },
    {
      name: 'randWriteQd16',
      needs: 'seqWrite', // it works on what seqWrite left
      label: 'rand write 4 KiB QD16 O_DIRECT',
      unit: 'IOPS',
      run: async (t) => (await fio([file(t), ...aio, '--rw=randwrite', '--bs=4k', size, ...timed])).write.iops,
    },
    {
      name: 'smallFiles',
      label: '2,000 files of 16 KiB, rand read/write 4 KiB',
      unit: 'IOPS',
      run: async (t) => {
        const d = path.join(t.dir, 'small');
        fs.mkdirSync(d, { recursive: true });
        const j = await fio([
          `--directory=${d}`,
          ...psync,
          '--nrfiles=2000',
          '--filesize=16k',
          '--bs=4k',
          '--rw=randrw',
          '--file_service_type=random',
          '--openfiles=64',
          ...timed,
        ]);
        return j.read.iops + j.write.iops;
      },
    },
    {
      name: 'cpIn',
      label: `cp of a ${cfg.cpMiB} MiB file into the volume, then sync`,
      unit: 'MiB/s',
      cold: true,
      run: async (t) => cfg.cpMiB / (await seconds(() => sh(`cp "${cfg.inputs.big}" "${t.dir}/cp.bin" && sync "${t.dir}/cp.bin"`))),
    },
    {
      name: 'cpOut',
      needs: 'cpIn', // it works on what cpIn left
      label: `cp of that file out of the volume, then sync`,
      unit: 'MiB/s',
      cold: true,
      run: async (t) => {
        const out = path.join(cfg.work, 'cp-out.bin');
        const s = await seconds(() => sh(`cp "${t.dir}/cp.bin" "${out}" && sync "${out}"`));
        fs.rmSync(out);
        return cfg.cpMiB / s;
      },
    },
    {
      name: 'tarIn',
      label: 'tar x of node_modules into the volume, then sync',
      unit: 'MiB/s',
      cold: true,
      run: async (t) =>
        cfg.inputs.tarMiB / (await seconds(() => sh(`mkdir "${t.dir}/tree" && tar -xf "${cfg.inputs.tar}" -C "${t.dir}/tree" && sync -f "${t.dir}/tree"`))),
    },
    {
      name: 'tarOut',
      needs: 'tarIn', // it works on what tarIn left
      label: 'tar c of that tree out of the volume (to a pipe)',
      unit: 'MiB/s',
      cold: true,
      // Through cat: GNU tar skips reading the files when it writes to /dev/null itself.
      run: async (t) => cfg.inputs.tarMiB / (await seconds(() => sh(`tar -cf - -C "${t.dir}/tree" . | cat >/dev/null`))),
    },
    {
      name: 'findStat',
      needs: 'tarIn', // it works on what tarIn left
      label: 'find + stat of every entry of that tree, cold',
      unit: 'entries/s',
      cold: true,
      run: async (t) => cfg.inputs.treeEntries / (await seconds(() => sh(`find "${t.dir}/tree" -printf '%s %T@\\n' >/dev/null`))),
    },
    {
      name: 'sqlite',
      label: 'SQLite insert transactions (rollback journal, synchronous=FULL)',
      unit: 'tx/s',
      run: async (t) => Number(await run(process.execPath, [path.join(here, 'sqlite-load.mjs'), path.join(t.dir, 'load.db'), String(cfg.runtime)])),
    },
  ];
}

/** Wait until the block device writes nothing for a second (ext4's lazy init of the inode tables has finished). */
export async function idle(dev) {
  const stat = `/sys/block/${path.basename(dev)}/stat`;
  const written = () => Number(fs.readFileSync(stat, 'utf8').trim().split(/\s+/)[6]);
  let last = written();
  let quiet = 0;
  while (quiet < 4) {
    await new Promise((r) => setTimeout(r, 250)); // polling a counter: the condition is "no change for 1 s"
    const now = written();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

/** Make the inputs the jobs `names` read, once: a 1 GiB file of random bytes, an uncompressed tarball of node_modules. */
export async function makeInputs(cfg, names) {
  const big = path.join(cfg.work, 'input.bin');
  const tar = path.join(cfg.work, 'tree.tar');
  if (names.some((n) => n.startsWith('cp')))
    await run('fio', ['--name=input', `--filename=${big}`, '--rw=write', '--bs=1M', `--size=${cfg.cpMiB}M`, '--refill_buffers', '--end_fsync=1']);
  if (!names.some((n) => n.startsWith('tar') || n === 'findStat')) return { big, tar, tarMiB: 0, treeEntries: 0 };
  await sh(`tar -cf "${tar}" -C "${cfg.treeRoot}" ${cfg.treeDirs.join(' ')}`);
  const treeEntries = Number((await sh(`tar -tf "${tar}" | wc -l`)).trim());
  return { big, tar, tarMiB: fs.statSync(tar).size / MiB, treeEntries };
}
