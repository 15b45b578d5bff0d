// A hardware fingerprint for `hardware_id`: the operating system's machine id, hashed with the product slug
// (so two vendors' programs on one machine send unrelated ids, and the raw id never leaves the machine).
//
//   Linux:   /etc/machine-id (or /var/lib/dbus/machine-id) — written when the OS is installed.
//   macOS:   IOPlatformUUID from `ioreg -rd1 -c IOPlatformExpertDevice` — the logic board's UUID.
//   Windows: MachineGuid from `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid` — written by setup.
//
// It survives reboots, updates and hardware changes short of a logic-board swap on a Mac. It changes when
// the OS is reinstalled, when a disk image is cloned and the id regenerated (sysprep, systemd-machine-id-setup,
// `rm /etc/machine-id`), on a new Mac logic board, and in a container or VM that makes its own id.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

function run(command, args) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 10000, windowsHide: true }, (error, stdout) =>
      error ? reject(error) : resolve(String(stdout)),
    );
  });
}

/** The raw machine id of this operating system (never send it: use hardwareId). */
export async function machineId(platform = process.platform) {
  if (platform === 'darwin') {
    const out = await run('ioreg', ['-rd1', '-c', 'IOPlatformExpertDevice']);
    const found = /"IOPlatformUUID"\s*=\s*"([^"]+)"/.exec(out);
    if (found) return found[1];
    throw new Error('ioreg names no IOPlatformUUID');
  }
  if (platform === 'win32') {
    const out = await run('reg', ['query', 'HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid']);
    const found = /MachineGuid\s+REG_SZ\s+(\S+)/i.exec(out);
    if (found) return found[1];
    throw new Error('the registry holds no MachineGuid');
  }
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = (await readFile(path, 'utf8')).trim();
      if (id) return id;
    } catch {
      // try the next
    }
  }
  throw new Error('no /etc/machine-id on this machine');
}

/** hex SHA-256 of `licsrv-hardware-v1\n<product slug>\n<machine id>` (64 characters). */
export function fingerprint(product, id) {
  return createHash('sha256').update(`licsrv-hardware-v1\n${product}\n${id}`, 'utf8').digest('hex');
}

/** This machine's hardware id for `product` (its slug). */
export async function hardwareId(product, platform = process.platform) {
  return fingerprint(product, await machineId(platform));
}
