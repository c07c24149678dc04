/**
 * `ca_bundle`: the system CA bundle exists and holds certificates. Node verifies upstream TLS
 * against its own bundled roots unless started with `--use-openssl-ca`, which uses this file;
 * health scripts, curl and ACME clients on the host always do.
 *
 * A bundle found but empty fails. None in the usual places is a warn ("cannot tell"): a system may
 * keep it elsewhere.
 */
import type { CheckResult, DoctorCheck } from './doctor-check.js';

const FIX =
  'install the ca-certificates package (apt-get install ca-certificates, dnf install ca-certificates, apk add ca-certificates)';

/** The `ca_bundle` check. */
export const caBundleCheck: DoctorCheck = (facts): CheckResult => {
  const bundle = facts.caBundle;
  if (bundle.state === 'missing') {
    return {
      id: 'ca_bundle',
      status: 'warn',
      value: null,
      expected: 'present',
      message: `cannot tell: no CA bundle at ${bundle.tried.join(', ')}`,
      fix: FIX,
    };
  }
  if (bundle.certificates === 0) {
    return {
      id: 'ca_bundle',
      status: 'fail',
      value: bundle.path,
      expected: 'present',
      message: `${bundle.path} holds no PEM certificate`,
      fix: `${FIX}, then update-ca-certificates`,
    };
  }
  return {
    id: 'ca_bundle',
    status: 'pass',
    value: bundle.path,
    expected: 'present',
    message: `${bundle.certificates} certificate${bundle.certificates === 1 ? '' : 's'} (node --use-openssl-ca, curl and ACME clients use it)`,
    fix: '',
  };
};
