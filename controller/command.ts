import type { Command } from 'commander';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { processEnv } from '../core/config/env.js';
import { EXIT } from '../core/config/exit-codes.js';
import { errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { makeKubeClient } from '../core/kube/client.js';
import { LeadershipLostError } from '../core/kube/manager.js';
import { parseControllerConfig, type ControllerFlags } from './config.js';
import { buildController } from './manager.js';
import { streamProcessorRunnable } from '../stream/runnable.js';

/**
 * `embedctl controller`: parse config, wire, run until SIGTERM. Exits (core/config/exit-codes.ts) `usage` on bad
 * configuration, `leaseLost` when leadership is lost (restart), `failed` on anything else.
 */
export function register(program: Command): void {
  program
    .command('controller')
    .description(
      'SQS → EmbeddingJob → worker Jobs: ingest, dispatch and status, leader-elected (controller/README.md)',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG)')
    .option('--no-leader-elect', 'run without leader election (single replica only)')
    .option('--pollers <n>', 'concurrent SQS long-pollers (default 4)')
    .option(
      '--max-outstanding <n>',
      'stop receiving while this many EmbeddingJobs are unfinished (default 2000)',
    )
    .option('--max-attempts <n>', 'attempts per EmbeddingJob before Failed (default 3)')
    .option('--finished-ttl <seconds>', 'delete finished EmbeddingJobs after this long (default 86400)')
    .option(
      '--image-pull-grace <seconds>',
      'retry the items of a worker pod that cannot get its image after this long (default 60)',
    )
    .option(
      '--allowed-images <list>',
      'comma-separated images worker Jobs may use: repositories (any tag/digest), prefixes ending in / : @, or exact references (default: none)',
    )
    .option(
      '--worker-secrets <list>',
      'comma-separated Secrets the worker env may reference (default: openai)',
    )
    .action(async (flags: ControllerFlags) => {
      const log = createLogger('controller');
      let config;
      try {
        config = parseControllerConfig(processEnv(), flags);
      } catch (err) {
        log.fatal(errorMessage(err));
        process.exit(EXIT.usage);
      }
      const kube = await makeKubeClient(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {});
      const queue = new SqsQueue(
        config.embedQueueUrl,
        { region: config.aws.region, ...(config.aws.endpoint ? { endpoint: config.aws.endpoint } : {}) },
        config.embedDlqUrl,
      );
      const app = buildController({ kube, queue, config, log });
      app.manager.addLeaderRunnable(
        'stream-processor',
        streamProcessorRunnable({
          log,
          registry: app.registry,
          isLeader: () => app.manager.isLeader(),
          kube,
        }),
      );
      const stop = new AbortController();
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        process.once(sig, () => {
          log.info(
            { signal: sig },
            'shutting down: stop receiving, finish in-flight work, release the Lease',
          );
          stop.abort();
        });
      }
      try {
        await app.manager.run(stop.signal);
        kube.close();
      } catch (err) {
        log.fatal(errorMessage(err));
        process.exit(err instanceof LeadershipLostError ? EXIT.leaseLost : EXIT.failed);
      }
    });
}
