import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SelfSignedOptions {
  /** The subject's common name. */
  commonName: string;
  /** subjectAltName entries such as `DNS:localhost` or `IP:127.0.0.1` (default `DNS:<commonName>`). */
  altNames?: string[];
  /** Days of validity (default 30). */
  days?: number;
  /** The folder that gets cert.pem and key.pem (default a new folder under the system's temp folder). */
  dir?: string;
}

export interface SelfSignedCertificate {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

/**
 * A self-signed P-256 certificate and its unencrypted key, made by `openssl req -x509` (the CI image
 * has openssl): for a test HTTPS server such as Pebble's, or a certificate a test stores.
 */
export function selfSignedCertificate(o: SelfSignedOptions): SelfSignedCertificate {
  const dir = o.dir ?? mkdtempSync(path.join(tmpdir(), 'apigate-cert-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const altNames = o.altNames ?? [`DNS:${o.commonName}`];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      String(o.days ?? 30),
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      `/CN=${o.commonName}`,
      '-addext',
      `subjectAltName=${altNames.join(',')}`,
    ],
    { stdio: 'pipe' },
  );
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}
