import type { Job as WireJob } from 'kubernetes-types/batch/v1.js';
import type { Event, Pod as WirePod } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';

/**
 * Kubernetes objects as the API server returns them (wire format, from `kubernetes-types`: timestamps are strings).
 * The wire types mark every field optional; an object read from the server always has metadata and a name, which
 * the controller relies on.
 */
export type Stored<T extends { metadata?: ObjectMeta }> = Omit<T, 'metadata'> & {
  metadata: ObjectMeta & { name: string };
};

export type KubeObject = Stored<{ apiVersion?: string; kind?: string; metadata?: ObjectMeta }>;
export type Job = Stored<WireJob>;
export type Pod = Stored<WirePod>;
export type KubeEvent = Stored<Event>;
