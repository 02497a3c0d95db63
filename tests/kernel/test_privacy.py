"""Privacy: secrets planted in the environment, in a file the workload reads and
in argv never reach the store or an export in clear."""

from __future__ import annotations

import os
import subprocess
import uuid

from conftest import opensre_cmd


def test_secrets_never_stored(observe, store, tmp_path):
    env_secret, file_secret, argv_secret = (f"S{uuid.uuid4().hex}" for _ in range(3))
    secret_file = tmp_path / "creds.txt"
    secret_file.write_text(f"password={file_secret}\n")
    script = (f"cat {secret_file} > /dev/null; printenv > /dev/null; "
              f"sh -c 'true --password={argv_secret}' ; env > /dev/null")
    env = dict(os.environ, OPENSRE_PLANTED=env_secret)
    obs = observe(["bash", "-c", script, "--", f"--token={argv_secret}"], env=env, check_status=0)
    records = obs.export()
    assert any("--password=***" in " ".join(r["argv"]) for r in records)

    blobs = []
    for suffix in ("", "-wal", "-shm"):
        p = f"{store}{suffix}"
        if os.path.exists(p):
            blobs.append(open(p, "rb").read())
    for what in ("processes", "execs"):
        out = subprocess.run(opensre_cmd() + ["export", "--store", str(store), "--what", what],
                             capture_output=True, check=True).stdout
        blobs.append(out)
    for cmd in (["show"], ["runs"]):
        blobs.append(subprocess.run(opensre_cmd() + cmd + ["--store", str(store)], capture_output=True, check=True).stdout)
    blobs.append(obs.stderr.encode())
    everything = b"\n".join(blobs)
    for secret in (env_secret, file_secret, argv_secret):
        assert secret.encode() not in everything, secret
    assert b"--password=***" in everything and b"--token=***" in everything
