import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { NAMES, clusterName, quantityToSize } from '../common.js';
import type { ChartProps } from './base.js';
import { ClusterChart } from './base.js';

/**
 * The shared Chroma volume (ReadWriteMany):
 * - `efs-dynamic`: an EFS CSI StorageClass in `efs-ap` mode with an explicit uid/gid (EFS access points enforce
 *   their POSIX identity, so pod `fsGroup` is ignored) and a PVC that the driver provisions;
 * - `efs-static`: one static PV on an existing file system (optionally `fs-…::fsap-…`) and a PVC bound to it;
 * - `hostPath` (kind): a static PV on a node directory declared ReadWriteMany. Pods still mount it through the PVC,
 *   which Pod Security "restricted" allows (only a hostPath *pod volume* would be rejected).
 */
export class StorageChart extends ClusterChart {
  readonly claimName = NAMES.pvc;
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    const st = cfg.storage;
    // Remote storage has no volume: the app does not add this chart then (cdk8s/app.ts).
    if (st.mode === 'remote') throw new Error('StorageChart: storage mode remote has no volume');
    const pvName = clusterName(cfg, 'chroma');
    let storageClassName = '';
    let volume: kplus.IPersistentVolume | undefined;

    if (st.mode === 'efs-dynamic') {
      storageClassName = clusterName(cfg, st.storageClassName);
      new kplus.k8s.KubeStorageClass(this, 'efs', {
        metadata: { name: storageClassName },
        provisioner: 'efs.csi.aws.com',
        reclaimPolicy: 'Retain',
        volumeBindingMode: 'Immediate',
        parameters: {
          provisioningMode: 'efs-ap',
          fileSystemId: st.fileSystemId,
          directoryPerms: st.directoryPerms,
          uid: String(st.uid),
          gid: String(st.gid),
          basePath: st.basePath,
          subPathPattern: '${.PVC.namespace}/${.PVC.name}',
          ensureUniqueDirectory: 'false',
        },
      });
    } else {
      const source =
        st.mode === 'efs-static'
          ? {
              csi: {
                driver: 'efs.csi.aws.com',
                volumeHandle: st.accessPointId ? `${st.fileSystemId}::${st.accessPointId}` : st.fileSystemId,
              },
            }
          : { hostPath: { path: st.path, type: 'DirectoryOrCreate' } };
      new kplus.k8s.KubePersistentVolume(this, 'pv', {
        metadata: { name: pvName },
        spec: {
          capacity: { storage: kplus.k8s.Quantity.fromString(st.size) },
          accessModes: ['ReadWriteMany'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          volumeMode: 'Filesystem',
          claimRef: { namespace: cfg.namespace, name: NAMES.pvc },
          ...(st.mode === 'efs-static' ? { mountOptions: ['tls'] } : {}),
          ...source,
        },
      });
      volume = kplus.PersistentVolume.fromPersistentVolumeName(this, 'pv-ref', pvName);
    }

    new kplus.PersistentVolumeClaim(this, 'pvc', {
      metadata: { name: NAMES.pvc, namespace: cfg.namespace },
      accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_MANY],
      storage: quantityToSize(st.size),
      storageClassName,
      volumeMode: kplus.PersistentVolumeMode.FILE_SYSTEM,
      ...(volume ? { volume } : {}),
    });
  }
}
