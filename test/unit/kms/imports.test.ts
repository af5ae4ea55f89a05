import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * No two files import each other (docs/architecture.md), checked here for
 * the KMS, the EC2 registry, the endpoint and the CLI: every relative import
 * (type-only ones included) of src/kms, src/ec2, src/server and src/cli, and
 * the strongly connected components of that graph. Any component of more
 * than one file is a circle. And the endpoint is imported only by itself and
 * the `serve` command: the CLI is built from the registries, not the server.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const AREAS = ['src/kms', 'src/ec2', 'src/server', 'src/cli'];

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of AREAS.flatMap((a) => files(path.join(ROOT, a)))) {
    const src = fs.readFileSync(file, 'utf8');
    const targets = [...src.matchAll(/^(?:import|export)\b[^;]*?from '(\.[^']+)'/gms)]
      .map((m) => path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')))
      .filter((t) => AREAS.some((a) => t.startsWith(path.join(ROOT, a) + path.sep)));
    graph.set(path.relative(ROOT, file), [...new Set(targets.map((t) => path.relative(ROOT, t)))]);
  }
  return graph;
}

/** Tarjan's strongly connected components. */
function circles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** Every relative import of every file under src/, static or dynamic (`await import('…')`), resolved to a path under the repository. */
function allImports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files(path.join(ROOT, 'src'))) {
    const src = fs.readFileSync(file, 'utf8');
    const specs = [...src.matchAll(/^(?:import|export)\b[^;]*?from '(\.[^']+)'/gms), ...src.matchAll(/\bimport\('(\.[^']+)'\)/g)].map((m) => m[1]!);
    graph.set(
      path.relative(ROOT, file),
      specs.map((t) => path.relative(ROOT, path.resolve(path.dirname(file), t.replace(/\.js$/, '.ts')))),
    );
  }
  return graph;
}

describe('imports of the KMS, the EC2 registry, the endpoint and the CLI', () => {
  it('src/server is imported only from src/server and the serve command (src/cli/serve.ts), statically or dynamically', () => {
    const graph = allImports();
    expect(graph.get('src/cli/serve.ts')).toContain('src/server/http.ts');
    const outside = [...graph].flatMap(([file, targets]) =>
      file.startsWith('src/server/') || file === 'src/cli/serve.ts' ? [] : targets.filter((t) => t.startsWith('src/server/')).map((t) => `${file} -> ${t}`),
    );
    expect(outside).toEqual([]);
  });

  it('the graph was read (a moved folder would silently check nothing)', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/kms/kms.ts')).toContain('src/kms/operations.ts');
  });

  it('no two files import each other, directly or through others', () => {
    expect(circles(importGraph())).toEqual([]);
  });
});
