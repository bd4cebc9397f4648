import { Option, type Command } from 'commander';
import { ENV } from '../../core/config/env.js';
import { similarity } from '../../core/contracts/vector-distance.js';
import { COLLECTIONS, parseVectorId, type Collection } from '../../core/contracts/ids.js';
import { rerankByDocument, rerankPool, type RankedHit } from '../../core/embedding/rerank.js';
import { ConfigError } from '../../core/errors.js';
import { askedEmbedder, chooseEmbedder, makeEmbedder } from '../../local/embedder.js';
import { homePaths } from '../../local/home.js';
import {
  chromaRootOption,
  embedderOption,
  homeOption,
  intArg,
  jsonOption,
  nonEmptyArg,
  type VolumeFlags,
} from '../options.js';
import { printJson, say } from '../print.js';
import { openView } from '../snapshot-target.js';
import { guarded } from '../usage.js';

interface QueryFlags extends VolumeFlags {
  collection?: string;
  embedder?: string;
  results: number;
  json?: boolean;
}

/** `embedctl query`: the nearest vectors of the live snapshot to a text or to a vector id. */
export function register(program: Command): void {
  program
    .command('query')
    .description('nearest vectors of the live snapshot to a text, or to the vector with this id')
    .argument(
      '<text-or-id>',
      'free text (embedded like the workers do), or a vector id IMAGE#…#RECEIPT#…#LINE#…',
      nonEmptyArg,
    )
    .addOption(homeOption())
    .addOption(embedderOption())
    .option(
      '--cloud',
      `read the live version from ${ENV.CHROMA_ROOT} (or the S3 mirror in ${ENV.VECTORS_BUCKET})`,
    )
    .addOption(chromaRootOption())
    .addOption(
      new Option(
        '-c, --collection <name>',
        'lines or words (default: words for a word id or a one-word text, else lines)',
      ).choices(COLLECTIONS),
    )
    .option('-n, --results <n>', 'how many neighbours', intArg(1, 1000), 5)
    .addOption(jsonOption())
    .action((text: string, f: QueryFlags) => guarded(() => query(text, f)));
}

/** The collection asked for, else words for a word id or a one-word text, else lines. */
function collectionFor(
  text: string,
  id: ReturnType<typeof parseVectorId>,
  asked: string | undefined,
): Collection {
  if (asked !== undefined) return asked as Collection;
  if (id) return id.wordId !== undefined ? 'words' : 'lines';
  return /\s/.test(text.trim()) ? 'lines' : 'words';
}

async function query(text: string, f: QueryFlags): Promise<number> {
  const id = parseVectorId(text);
  const collection = collectionFor(text, id, f.collection);
  if (!COLLECTIONS.includes(collection))
    throw new ConfigError(`--collection must be lines or words, not ${collection}`);
  // Only the collection asked for: a damaged other collection does not stand in the way.
  const { view, cleanup } = await openView(f, { collections: [collection] });
  try {
    const store = view.store(collection);
    if (!store)
      throw new ConfigError(
        `no published ${collection} snapshot yet: run the pipeline first (embedctl local run)`,
      );
    let hits: RankedHit[];
    if (id) {
      const got = await store.get(collection, { ids: [text], include: ['embeddings'] });
      if (!got.embeddings?.[0])
        throw new ConfigError(`no vector with id ${text} in ${collection} ${view.versions[collection]}`);
      hits = (await store.query(collection, got.embeddings[0], f.results)).map((h) => ({
        ...h,
        similarity: similarity(h.distance),
      }));
    } else {
      // Embedded as the snapshot's vectors were (a query in another vector space finds nothing sensible): the
      // deployed pipeline's are OpenAI's, a home's are what state/embedder.json says.
      const asked = askedEmbedder(f.embedder);
      const kind = f.cloud ? (asked ?? 'openai') : chooseEmbedder(homePaths(f.home), asked);
      const embedder = await makeEmbedder(kind);
      const [vector] = (await embedder.embed([text])) as [Float32Array];
      const pool = await store.query(collection, vector, rerankPool(f.results));
      hits = await rerankByDocument(embedder, vector, pool, f.results);
    }
    const rows = hits.map(({ similarity: sim, ...h }) => ({
      similarity: Math.round(sim * 1000) / 1000,
      ...h,
    }));
    if (f.json) printJson({ collection, version: view.versions[collection], hits: rows });
    else {
      say(`${collection} ${view.versions[collection]} (${view.origins[collection]}):\n`);
      for (const h of rows) {
        const merchant =
          typeof h.metadata?.merchant_name === 'string' && h.metadata.merchant_name
            ? `  [${h.metadata.merchant_name}]`
            : '';
        say(`  ${h.similarity.toFixed(3)}  ${JSON.stringify(h.document ?? '')}${merchant}  ${h.id}\n`);
      }
    }
    return 0;
  } finally {
    await view.close();
    await cleanup();
  }
}
