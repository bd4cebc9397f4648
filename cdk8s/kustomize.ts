/**
 * The Kustomize layout `npm run synth` writes next to the plain manifests, so that a user can change a value with
 * kubectl alone (`kubectl apply -k charts/overlays/prod`):
 *
 *   charts/base/                 the `dev` environment's synth + kustomization.yaml
 *   charts/overlays/<env>/       kustomization.yaml: `images:` (one per program) and `replicas:` transformers, then
 *                                patches/<knob>/<kind>-<name>.yaml (JSON 6902): queues, iam, storage, resources, keda,
 *                                and environment (everything else that differs from the base); added.yaml holds
 *                                objects the base lacks, deleted.yaml removes those the environment does not have.
 *
 * cdk8s stays the source of truth: each overlay is derived from the difference between the base's objects and the
 * environment's synth, and test/integration/charts-apply.test.ts renders every overlay with kubectl and compares it
 * with that synth. The knob patches are written for every overlay even where a value equals the base's, so each
 * overlay shows the values a user is expected to set. No library turns two manifests into an editable overlay
 * (kustomize only applies them), hence the small differ below.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';

import { imageRepository } from '../core/contracts/image-reference.js';
import { synthToDir } from './app.js';
import { LABEL } from '../core/contracts/labels.js';
import { NAMES } from './common.js';
import type { EnvironmentConfig } from './config.js';

/** The environments that get an overlay. */
export const KUSTOMIZE_OVERLAYS = ['dev', 'prod', 'node'] as const;
export const KUSTOMIZE_BASE_ENV = 'dev';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & {
  [k: string]: Json;
};
interface Op {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: Json;
}
/** A patch operation, the `test` operations that check the list elements it goes through, and its knob. */
interface KnobOp {
  knob: string;
  guards: Op[];
  op: Op;
}

/** Knobs: (kind, object name, semantic path) → patch folder. Named list elements appear as `[name]`. */
const CONTAINER = String.raw`spec/template/spec/containers/\[[^\]]+\]`;
const KNOBS: { knob: string; kind: string; name?: string; path: RegExp }[] = [
  {
    knob: 'queues',
    kind: 'Deployment',
    path: new RegExp(`^${CONTAINER}/env/\\[[A-Z_]*(QUEUE|DLQ)_URL\\]/value$`),
  },
  { knob: 'queues', kind: 'ScaledObject', path: /^spec\/triggers\/\[[^\]]+\]\/metadata\/queueURL$/ },
  { knob: 'iam', kind: 'ServiceAccount', path: /^metadata\/annotations\/eks\.amazonaws\.com\/role-arn$/ },
  { knob: 'iam', kind: 'TriggerAuthentication', path: /^spec\/podIdentity$/ },
  { knob: 'storage', kind: 'StorageClass', path: /^parameters\/fileSystemId$/ },
  { knob: 'storage', kind: 'PersistentVolume', path: /^spec\/(csi\/volumeHandle|capacity\/storage)$/ },
  { knob: 'storage', kind: 'PersistentVolumeClaim', path: /^spec\/resources\/requests\/storage$/ },
  { knob: 'resources', kind: 'Deployment', path: new RegExp(`^${CONTAINER}/resources$`) },
  {
    knob: 'resources',
    kind: 'ConfigMap',
    name: NAMES.workerConfigMap,
    path: /^data\/(resources|scratchSize|maxActivePods)$/,
  },
  // The worker images the controller and the admission policy allow: follow `images:` when you change the registry.
  {
    knob: 'allowed-images',
    kind: 'Deployment',
    name: NAMES.controller,
    path: new RegExp(`^${CONTAINER}/args/2$`),
  },
  {
    knob: 'allowed-images',
    kind: 'ValidatingAdmissionPolicy',
    path: /^spec\/variables\/\[allowedImages\]\/expression$/,
  },
  {
    knob: 'keda',
    kind: 'ScaledObject',
    path: /^spec\/(pollingInterval|cooldownPeriod)$|^spec\/triggers\/\[[^\]]+\]\/metadata\/queueLength$/,
  },
];
/** Set by the `images:`, `replicas:` and `labels:` transformers of the overlay, never by a patch. */
const TRANSFORMED: { kind: string; name?: string; path: RegExp }[] = [
  // The environment's name on every object (its selectors and pod templates keep theirs in the patches).
  { kind: '*', path: new RegExp(`^metadata/labels/${LABEL.instance.replace(/\./g, '\\.')}$`) },
  { kind: 'Deployment', path: new RegExp(`^${CONTAINER}/image$`) },
  { kind: 'ConfigMap', name: NAMES.workerConfigMap, path: /^data\/image$/ },
  { kind: 'Deployment', name: NAMES.controller, path: /^spec\/replicas$/ },
];
const ENVIRONMENT_KNOB = 'environment';
/** Structural changes first: knob paths index lists as they are in the environment (after those changes). */
const KNOB_ORDER = [ENVIRONMENT_KNOB, 'allowed-images', 'queues', 'iam', 'storage', 'resources', 'keda'];

const matches = <R extends { kind: string; name?: string }>(rules: R[], o: Obj): R[] =>
  rules.filter(
    (r) => (r.kind === '*' || r.kind === o.kind) && (r.name === undefined || r.name === o.metadata.name),
  );

const pointer = (segs: (string | number)[]): string =>
  segs.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');

const isObject = (v: Json | undefined): v is { [k: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `name` of every element, when all are objects with distinct string names (containers, env, triggers…). */
function names(list: Json[]): string[] | undefined {
  const out = list.map((e) => (isObject(e) && typeof e.name === 'string' ? e.name : undefined));
  if (out.some((n) => n === undefined) || new Set(out).size !== out.length) return undefined;
  return out as string[];
}

/** JSON 6902 operations that turn `base` into `target`, labelled by knob. */
export function diffObject(base: Obj, target: Obj): KnobOp[] {
  const knobs = matches(KNOBS, target);
  const transformed = matches(TRANSFORMED, target);
  const out: KnobOp[] = [];
  const knobOf = (sem: string): string | undefined => knobs.find((k) => k.path.test(sem))?.knob;

  /** Knob values inside a subtree written whole (added or replaced), so the knob files still show them. */
  const knobsIn = (t: Json, segs: (string | number)[], sem: string[], guards: Op[]): void => {
    const knob = knobOf(sem.join('/'));
    if (knob) return void out.push({ knob, guards, op: { op: 'replace', path: pointer(segs), value: t } });
    if (isObject(t)) for (const [k, v] of Object.entries(t)) knobsIn(v, [...segs, k], [...sem, k], guards);
    if (Array.isArray(t)) {
      const n = names(t);
      t.forEach((v, i) => knobsIn(v, [...segs, i], [...sem, n ? `[${n[i]}]` : String(i)], guards));
    }
  };

  const walk = (
    b: Json | undefined,
    t: Json | undefined,
    segs: (string | number)[],
    sem: string[],
    guards: Op[],
  ) => {
    const semPath = sem.join('/');
    if (transformed.some((r) => r.path.test(semPath))) return;
    const knob = knobOf(semPath);
    const path = pointer(segs);
    if (knob) {
      if (t === undefined) out.push({ knob, guards, op: { op: 'remove', path } });
      else out.push({ knob, guards, op: { op: b === undefined ? 'add' : 'replace', path, value: t } });
      return;
    }
    const env = (op: Op) => out.push({ knob: ENVIRONMENT_KNOB, guards, op });
    if (t === undefined) return env({ op: 'remove', path });
    if (b === undefined) {
      env({ op: 'add', path, value: t });
      return knobsIn(t, segs, sem, guards);
    }
    if (isObject(b) && isObject(t)) {
      for (const k of Object.keys(b)) if (!(k in t)) walk(b[k], undefined, [...segs, k], [...sem, k], guards);
      for (const [k, v] of Object.entries(t)) walk(b[k], v, [...segs, k], [...sem, k], guards);
      return;
    }
    if (Array.isArray(b) && Array.isArray(t)) {
      const bn = names(b);
      const tn = names(t);
      const common = bn && tn ? bn.filter((n) => tn.includes(n)) : undefined;
      if (
        bn &&
        tn &&
        common &&
        isDeepStrictEqual(
          common,
          tn.filter((n) => bn.includes(n)),
        )
      ) {
        // Removals from the end first, then the environment's order: additions and changes at their final index.
        for (let i = bn.length - 1; i >= 0; i--) {
          if (tn.includes(bn[i]!)) continue;
          const at = [...segs, i];
          env({ op: 'test', path: pointer([...at, 'name']), value: bn[i]! });
          env({ op: 'remove', path: pointer(at) });
        }
        tn.forEach((n, i) => {
          const at = [...segs, i];
          const elemSem = [...sem, `[${n}]`];
          const bi = bn.indexOf(n);
          if (bi < 0) {
            env({ op: 'add', path: pointer(at), value: t[i]! });
            return knobsIn(t[i]!, at, elemSem, guards);
          }
          walk(b[bi], t[i], at, elemSem, [
            ...guards,
            { op: 'test', path: pointer([...at, 'name']), value: n },
          ]);
        });
        return;
      }
      if (b.length === t.length && !bn && !tn) {
        t.forEach((v, i) => walk(b[i], v, [...segs, i], [...sem, String(i)], guards));
        return;
      }
      if (isDeepStrictEqual(b, t)) return knobsIn(t, segs, sem, guards);
      env({ op: 'replace', path, value: t });
      return knobsIn(t, segs, sem, guards);
    }
    if (!isDeepStrictEqual(b, t)) env({ op: 'replace', path, value: t });
  };
  for (const k of new Set([...Object.keys(base), ...Object.keys(target)])) {
    if (k === 'apiVersion' || k === 'kind') continue;
    walk(base[k], target[k], [k], [k], []);
  }
  return out;
}

/** Patch operations with their guards, dropping a guard already written just before (same element). */
function withGuards(ops: KnobOp[]): Op[] {
  const out: Op[] = [];
  for (const { guards, op } of ops) {
    for (const g of guards) if (!out.some((o) => isDeepStrictEqual(o, g))) out.push(g);
    out.push(op);
  }
  return out;
}

const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const fileName = (o: Obj): string => `${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;

function readSynth(cfg: EnvironmentConfig): { files: string[]; dir: string; objects: Obj[] } {
  const dir = mkdtempSync(join(tmpdir(), `synth-${cfg.name}-`));
  const files = synthToDir(cfg, dir);
  const objects = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8'))
      .map((d) => d.toJSON() as Obj | null)
      .filter((o): o is Obj => o !== null),
  );
  return { files, dir, objects };
}

/** `name`, `newName`, `newTag` / `digest` of Kustomize's images transformer, from a base and a wanted reference. */
function imageEntry(from: string, to: string): Record<string, string> {
  const repo = imageRepository(to);
  const rest = to.slice(repo.length);
  const entry: Record<string, string> = { name: imageRepository(from), newName: repo };
  if (rest.startsWith('@')) entry.digest = rest.slice(1);
  else if (rest.startsWith(':')) entry.newTag = rest.slice(1);
  return entry;
}

const HEADER = (what: string): string =>
  `# Generated by \`npm run synth\` (cdk8s/kustomize.ts) from cdk8s/config.ts: ${what}.\n` +
  '# Edit the values in this folder freely; `npm run synth` rewrites it (copy the overlay to keep your edits).\n';

const yaml = (docs: unknown[]): string => docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');

/** The base images' `name`s, which every overlay's `images:` entries match (and the worker ConfigMap's field). */
const IMAGES_CONFIG = { images: [{ path: 'data/image', kind: 'ConfigMap' }] };

/**
 * Writes `<outdir>/base` (the synth of `base`) and `<outdir>/overlays/<name>` for each environment, replacing what
 * was there. Returns the files written, relative to `outdir`.
 */
export function writeKustomize(
  outdir: string,
  base: EnvironmentConfig,
  overlays: EnvironmentConfig[],
): string[] {
  const written: string[] = [];
  const write = (rel: string, text: string): void => {
    const path = join(outdir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    written.push(rel);
  };
  rmSync(join(outdir, 'base'), { recursive: true, force: true });
  rmSync(join(outdir, 'overlays'), { recursive: true, force: true });

  const b = readSynth(base);
  try {
    for (const f of b.files) write(join('base', f), readFileSync(join(b.dir, f), 'utf8'));
    write(
      join('base', 'kustomization.yaml'),
      HEADER(`environment "${base.name}", the base of every overlay`) +
        yaml([{ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: b.files }]),
    );
    const baseByKey = new Map(b.objects.map((o) => [key(o), o]));
    for (const cfg of overlays) {
      const t = readSynth(cfg);
      try {
        const dir = join('overlays', cfg.name);
        const targetKeys = new Set(t.objects.map(key));
        const added = t.objects.filter((o) => !baseByKey.has(key(o)));
        const deleted = b.objects.filter((o) => !targetKeys.has(key(o)));
        const patches: { path: string; target: Record<string, string> }[] = [];
        const files = new Map<string, { target: Obj; ops: KnobOp[] }>();
        for (const o of t.objects) {
          const from = baseByKey.get(key(o));
          if (!from) continue;
          for (const op of diffObject(from, o)) {
            const rel = join('patches', op.knob, fileName(o));
            if (!files.has(rel)) files.set(rel, { target: o, ops: [] });
            files.get(rel)!.ops.push(op);
          }
        }
        const order = (rel: string) => KNOB_ORDER.indexOf(rel.split('/')[1]!);
        for (const rel of [...files.keys()].sort((x, y) => order(x) - order(y) || x.localeCompare(y))) {
          const { target, ops } = files.get(rel)!;
          write(join(dir, rel), yaml([withGuards(ops)]));
          patches.push({
            path: rel,
            target: {
              ...(target.apiVersion.includes('/') ? { group: target.apiVersion.split('/')[0]! } : {}),
              kind: target.kind,
              name: target.metadata.name,
            },
          });
        }
        const resources = ['../../base'];
        if (added.length) {
          write(join(dir, 'added.yaml'), yaml(added));
          resources.push('added.yaml');
        }
        const deletePatches = deleted.map((o) => ({
          apiVersion: o.apiVersion,
          kind: o.kind,
          metadata: {
            name: o.metadata.name,
            ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
          },
          $patch: 'delete',
        }));
        if (deleted.length) write(join(dir, 'deleted.yaml'), yaml(deletePatches));
        write(join(dir, 'images-config.yaml'), yaml([IMAGES_CONFIG]));
        const kustomization = {
          apiVersion: 'kustomize.config.k8s.io/v1beta1',
          kind: 'Kustomization',
          resources,
          // The worker image lives in the worker ConfigMap (the controller builds the Jobs from it).
          configurations: ['images-config.yaml'],
          images: (['controller', 'worker', 'compactor'] as const).map((p) =>
            imageEntry(base.images[p], cfg.images[p]),
          ),
          replicas: [{ name: NAMES.controller, count: cfg.controller.replicas }],
          labels: [{ pairs: { [LABEL.instance]: cfg.name } }],
          patches: [...(deleted.length ? [{ path: 'deleted.yaml' }] : []), ...patches],
        };
        write(join(dir, 'kustomization.yaml'), HEADER(`environment "${cfg.name}"`) + yaml([kustomization]));
      } finally {
        rmSync(t.dir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(b.dir, { recursive: true, force: true });
  }
  return written.sort();
}
