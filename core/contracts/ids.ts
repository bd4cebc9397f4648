/** Stable Chroma vector ids (docs/adr/0009-wire-contracts.md), zero-padded to five digits like the original system. */
const pad = (n: number) => String(n).padStart(5, '0');

export function receiptPrefix(imageId: string, receiptId: number): string {
  return `IMAGE#${imageId}#RECEIPT#${pad(receiptId)}`;
}

export function lineVectorId(imageId: string, receiptId: number, lineId: number): string {
  return `${receiptPrefix(imageId, receiptId)}#LINE#${pad(lineId)}`;
}

export function wordVectorId(imageId: string, receiptId: number, lineId: number, wordId: number): string {
  return `${lineVectorId(imageId, receiptId, lineId)}#WORD#${pad(wordId)}`;
}

export interface ParsedVectorId {
  imageId: string;
  receiptId: number;
  lineId: number;
  wordId?: number;
}

const ID_PATTERN = /^IMAGE#([^#]+)#RECEIPT#(\d{5})#LINE#(\d{5})(?:#WORD#(\d{5}))?$/;

export function parseVectorId(id: string): ParsedVectorId | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  const [, imageId, receipt, line, word] = m;
  return {
    imageId: imageId!,
    receiptId: Number(receipt),
    lineId: Number(line),
    ...(word === undefined ? {} : { wordId: Number(word) }),
  };
}

export const COLLECTIONS = ['lines', 'words'] as const;
export type Collection = (typeof COLLECTIONS)[number];

export function deltaKey(collection: Collection, runId: string): string {
  return `${collection}/delta/${runId}/delta.arrow`;
}
