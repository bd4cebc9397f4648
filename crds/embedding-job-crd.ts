import { z } from 'zod';
import {
  EmbeddingJobSpec,
  EmbeddingJobStatus,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
} from '../core/contracts/embedding-job.js';

type JsonSchema = Record<string, unknown>;

/**
 * Converts zod's JSON Schema into the structural OpenAPI v3 subset the apiserver accepts: no `$schema`, no
 * `additionalProperties: false` beside `properties`, `const` as a one-value enum.
 */
function structural(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$schema' || key === 'additionalProperties' || key === 'id') continue;
    if (key === 'const') out.enum = [value];
    else if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, structural(v)]),
      );
    } else if (key === 'items') out.items = structural(value as JsonSchema);
    else out[key] = value;
  }
  return out;
}

function toOpenApi(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return structural(z.toJSONSchema(schema, { target: 'openapi-3.0', io }) as JsonSchema);
}

export function embeddingJobCrd(): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'embeddingjob',
        shortNames: ['ej'],
        // `kubectl get receipts` (or `embedding`) lists EmbeddingJobs with whatever else the project adds later.
        categories: ['receipts', 'embedding'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Attempts', type: 'integer', jsonPath: '.status.attempts' },
            { name: 'Lines', type: 'integer', jsonPath: '.status.result.rows' },
            { name: 'Words', type: 'integer', jsonPath: '.status.result.words' },
            {
              name: 'Compacted',
              type: 'string',
              jsonPath: ".status.conditions[?(@.type=='Compacted')].status",
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            // priority 1: shown by `kubectl get -o wide` (and `embedctl get jobs -o wide`), not the default table.
            {
              name: 'Reason',
              type: 'string',
              jsonPath: ".status.conditions[?(@.type=='Running')].reason",
              priority: 1,
            },
            { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: {
                  ...toOpenApi(EmbeddingJobSpec, 'input'),
                  // Nothing updates a spec after creation (status goes through the subresource); an edited spec
                  // would change what an already-dispatched worker reads. Re-embedding means a new EmbeddingJob.
                  'x-kubernetes-validations': [
                    {
                      rule: 'self == oldSelf',
                      message: 'spec is immutable: create a new EmbeddingJob to embed another receipt',
                    },
                  ],
                },
                status: toOpenApi(EmbeddingJobStatus, 'output'),
              },
            },
          },
        },
      ],
    },
  };
}
