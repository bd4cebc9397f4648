/** The programs that get an image of their own (Dockerfile targets); the stream processor runs in the controller. */
export const IMAGE_PROGRAMS = ['controller', 'worker', 'compactor'] as const;
export type ImageProgram = (typeof IMAGE_PROGRAMS)[number];
