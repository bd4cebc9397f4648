import { PipelineError } from '../errors.js';

/**
 * A reader for the subset of Python pickles that Chroma's HNSW segment writes as `index_metadata.pickle` (a dict of
 * str → int/None/dict/list; protocol 2–5, from Python's pickle or Rust's serde_pickle). Hand-written: no maintained
 * npm package reads pickles, and this subset builds only plain values — no class lookups, no code, nothing executed.
 */
export type PickleValue =
  null | boolean | number | bigint | string | PickleValue[] | Map<PickleValue, PickleValue>;

export class PickleError extends PipelineError {
  constructor(source: string, problem: string) {
    super('SnapshotDamaged', `${source}: cannot read pickle: ${problem}`, { source, problem });
  }
}

const MARK = Symbol('mark');
type Item = PickleValue | typeof MARK;

export function readPickle(buf: Buffer, source: string): PickleValue {
  const stack: Item[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new PickleError(source, `truncated at byte ${pos}`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new PickleError(source, `stack underflow at byte ${pos}`);
    return v;
  };
  const popToMark = (): PickleValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError(source, `no mark at byte ${pos}`);
    return stack.splice(i).slice(1) as PickleValue[];
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError(source, `empty stack at byte ${pos}`);
    return v;
  };
  const str = (len: number) => buf.toString('utf8', need(len), pos);
  const setItems = (d: PickleValue, kv: PickleValue[]) => {
    if (!(d instanceof Map)) throw new PickleError(source, `SETITEM(S) on a non-dict at byte ${pos}`);
    for (let i = 0; i + 1 < kv.length; i += 2) d.set(kv[i]!, kv[i + 1]!);
  };
  for (;;) {
    const op = buf[need(1)]!;
    switch (op) {
      case 0x80: // PROTO
        need(1);
        break;
      case 0x95: // FRAME
        need(8);
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(buf.readUInt8(need(1)));
        break;
      case 0x4d: // BININT2
        stack.push(buf.readUInt16LE(need(2)));
        break;
      case 0x4a: // BININT
        stack.push(buf.readInt32LE(need(4)));
        break;
      case 0x8a: {
        // LONG1: n bytes, little-endian two's complement
        const n = buf.readUInt8(need(1));
        const at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
        if (n > 0 && buf[at + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(buf.readDoubleBE(need(8)));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(buf.readUInt32LE(need(4))));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(buf.readUInt8(need(1))));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(Number(buf.readBigUInt64LE(need(8)))));
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popToMark();
        setItems(top(), kv);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError(source, `APPEND on a non-list at byte ${pos}`);
        l.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const vs = popToMark();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError(source, `APPENDS on a non-list at byte ${pos}`);
        l.push(...vs);
        break;
      }
      case 0x74: // TUPLE
        stack.push(popToMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x71: // BINPUT
        memo.set(buf.readUInt8(need(1)), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(buf.readUInt32LE(need(4)), top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x68 ? buf.readUInt8(need(1)) : buf.readUInt32LE(need(4));
        if (!memo.has(k)) throw new PickleError(source, `memo ${k} unset at byte ${pos}`);
        stack.push(memo.get(k)!);
        break;
      }
      default:
        throw new PickleError(source, `unsupported opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }
}
