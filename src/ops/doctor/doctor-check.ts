/** The contract every doctor check implements, and the shape of its result (CONTRACT section 8). */
import type { DoctorSizing } from './doctor-sizing.js';
import type { HostFacts } from './host-facts.js';

/** Every check id, in the order the report lists them. Permanent: scripts match on them. */
export const CHECK_IDS = [
  'nofile',
  'file_max',
  'somaxconn',
  'tcp_max_syn_backlog',
  'ip_local_port_range',
  'tcp_tw_reuse',
  'tcp_fin_timeout',
  'rmem_default',
  'wmem_default',
  'time_sync',
  'ca_bundle',
  'sshd_root_login',
  'sshd_password_auth',
  'sshd_allow_users',
  'running_as_root',
  'node_version',
  'workers_vs_cores',
] as const;

/** One of CHECK_IDS. */
export type CheckId = (typeof CHECK_IDS)[number];

/** `fail` makes `sluice doctor` exit 1; `warn` (including "cannot tell") does not. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/** One line of the report. */
export interface CheckResult {
  readonly id: CheckId;
  readonly status: CheckStatus;
  /** What the host has, as the source writes it (`32768 60999`); null when it cannot be read. */
  readonly value: string | null;
  /** What a high-concurrency server wants, with its comparison (`>= 65535`). */
  readonly expected: string;
  /** One line: what the value means, and why it matters. */
  readonly message: string;
  /** One line to run or write to get `expected`; empty when the check passes. */
  readonly fix: string;
}

/** A check: a pure function of the facts and what the config asks for. Some yield several results. */
export type DoctorCheck = (facts: HostFacts, sizing: DoctorSizing) => CheckResult | readonly CheckResult[];

/** Whether `id` is one of CHECK_IDS. */
export function isCheckId(id: string): id is CheckId {
  return (CHECK_IDS as readonly string[]).includes(id);
}
