import type { ContainerState, ContainerStatus } from 'kubernetes-types/core/v1.js';
import { WORKER_CONTAINER } from '../../core/jobs/lifecycle.js';

/** A worker container status as the kubelet reports it (the required fields around the state under test). */
export const workerContainer = (state: ContainerState): ContainerStatus => ({
  name: WORKER_CONTAINER,
  image: 'embedctl',
  imageID: '',
  ready: false,
  restartCount: 0,
  state,
});
