/**
 * Hand-written, minimal typed constructs for the third-party custom resources the charts use (KEDA, Prometheus
 * Operator). They cover only the fields we set; the integration test validates them against KEDA's real CRDs on the
 * apiserver. Nothing here is copied from those projects (no vendored CRDs: see docs/deploy.md).
 */
import type { ApiObjectMetadata } from 'cdk8s';
import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';

/** The construct class of one custom resource kind: `new Kind(scope, id, { metadata, spec })`, with `Kind.GVK`. */
function customResource<Spec>(gvk: { readonly apiVersion: string; readonly kind: string }) {
  return class extends ApiObject {
    static readonly GVK = gvk;
    constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: Spec }) {
      super(scope, id, { ...gvk, metadata: props.metadata, spec: props.spec });
    }
  };
}

// ------------------------------------------------------------------------------------------------ KEDA (keda.sh)

/** `aws-sqs-queue` trigger metadata (KEDA docs, scaler `aws_sqs_queue_scaler.go`); values are strings. */
export interface AwsSqsQueueTriggerMetadata {
  readonly queueURL: string;
  readonly awsRegion: string;
  readonly queueLength?: string;
  readonly activationQueueLength?: string;
  readonly scaleOnInFlight?: 'true' | 'false';
  readonly scaleOnDelayed?: 'true' | 'false';
  /** Only for emulators; unset on AWS. */
  readonly awsEndpoint?: string;
}

export interface ScaledObjectTrigger {
  readonly type: 'aws-sqs-queue';
  readonly name?: string;
  readonly metadata: AwsSqsQueueTriggerMetadata;
  readonly authenticationRef?: { readonly name: string; readonly kind?: 'TriggerAuthentication' };
}

export interface ScaledObjectSpec {
  readonly scaleTargetRef: { readonly name: string; readonly apiVersion?: string; readonly kind?: string };
  readonly pollingInterval?: number;
  readonly cooldownPeriod?: number;
  readonly initialCooldownPeriod?: number;
  readonly minReplicaCount?: number;
  readonly maxReplicaCount?: number;
  readonly triggers: readonly ScaledObjectTrigger[];
}

export class ScaledObject extends customResource<ScaledObjectSpec>({
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'ScaledObject',
}) {}

export interface TriggerAuthenticationSpec {
  /** `provider: aws` with either identityOwner (keda | workload) or an explicit roleArn (mutually exclusive). */
  readonly podIdentity?: {
    readonly provider: 'aws';
    readonly identityOwner?: 'keda' | 'workload';
    readonly roleArn?: string;
  };
  /** Static credentials (emulators only): parameters awsAccessKeyID / awsSecretAccessKey from a Secret. */
  readonly secretTargetRef?: readonly {
    readonly parameter: string;
    readonly name: string;
    readonly key: string;
  }[];
}

export class TriggerAuthentication extends customResource<TriggerAuthenticationSpec>({
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'TriggerAuthentication',
}) {}

// ------------------------------------------------------------------------ Prometheus Operator (monitoring.coreos.com)

export interface ServiceMonitorSpec {
  readonly selector: { readonly matchLabels: Record<string, string> };
  readonly namespaceSelector?: { readonly matchNames: readonly string[] };
  readonly endpoints: readonly {
    readonly port: string;
    readonly path?: string;
    readonly interval?: string;
  }[];
}

export class ServiceMonitor extends customResource<ServiceMonitorSpec>({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'ServiceMonitor',
}) {}

export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** `spec.groups` is Prometheus's own rule-file format, so promtool checks and tests it as is. */
export interface PrometheusRuleSpec {
  readonly groups: readonly { readonly name: string; readonly rules: readonly AlertingRule[] }[];
}

export class PrometheusRule extends customResource<PrometheusRuleSpec>({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
}) {}
