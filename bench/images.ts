import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { defaultImageDir } from '../test/harness/versions.js';
import { IMAGE_PROGRAMS } from '../tools/image/programs.js';
import type { Figures } from './run.js';

/**
 * `image.<program>_mb`: the size of each program's image (docs/adr/0016) as podman reports it (uncompressed, all
 * layers), in MB of 10^6 bytes, from the store tools/image/build.sh builds into (`npm run prebench` builds them).
 * The controller's budget is 250 MB (issue 16); the stand-in Debian base here is about the official slim image's size.
 */
export async function benchImages(): Promise<Figures> {
  const work = defaultImageDir();
  const storage = join(work, 'storage.conf');
  if (!existsSync(storage)) throw new Error(`no image store at ${work}: run tools/image/build.sh first`);
  const env = {
    ...process.env,
    CONTAINERS_STORAGE_CONF: storage,
    CONTAINERS_CONF: join(work, 'containers.conf'),
  };
  const figures: Figures = {};
  for (const program of IMAGE_PROGRAMS) {
    const image = `localhost/receipt-embeddings-${program}:dev`;
    const bytes = Number(
      execFileSync('podman', ['image', 'inspect', image, '--format', '{{.Size}}'], {
        encoding: 'utf8',
        env,
      }).trim(),
    );
    if (!Number.isFinite(bytes) || bytes <= 0) throw new Error(`podman reported no size for ${image}`);
    figures[`image.${program}_mb`] = { value: Math.round(bytes / 1e5) / 10, unit: 'MB' };
  }
  return figures;
}
