/** The `sluice init` targets: one generator each, registered here and nowhere else. */
import { renderDocker } from './dockerfile.js';
import type { InitFile, InitInput } from './init-input.js';
import { renderK8s } from './k8s-manifests.js';
import { renderLimitsConf } from './limits-conf.js';
import { renderSysctlConf } from './sysctl-conf.js';
import { renderSystemdUnit } from './systemd-unit.js';

/** A generator: pure, input in, files out; and what to run once they are in place. */
export interface InitTarget {
  readonly render: (input: InitInput) => InitFile[];
  /** Shown after `--out` wrote the files; `DIR` stands for the output directory. */
  readonly next: string;
  /** Whether the output depends on the config (then init says which config it took). */
  readonly usesConfig: boolean;
}

/** Every target, in the order the usage message lists them. */
export const INIT_TARGETS = {
  systemd: {
    render: renderSystemdUnit,
    next: 'with --out /: systemctl daemon-reload && systemctl enable --now sluice',
    usesConfig: true,
  },
  docker: {
    render: renderDocker,
    next: 'docker build -t sluice:latest DIR (DIR: the root of a sluice source checkout, with your config there)',
    usesConfig: true,
  },
  sysctl: { render: renderSysctlConf, next: 'with --out /: sysctl --system', usesConfig: true },
  limits: { render: renderLimitsConf, next: 'applies from the next login of the user', usesConfig: true },
  k8s: {
    render: renderK8s,
    next: 'kubectl apply -f DIR/k8s/sluice.yaml (after setting the image)',
    usesConfig: true,
  },
} as const satisfies Record<string, InitTarget>;

/** A target's name. */
export type InitTargetName = keyof typeof INIT_TARGETS;

/** Whether `name` is a target. */
export function isInitTarget(name: string): name is InitTargetName {
  return Object.hasOwn(INIT_TARGETS, name);
}
