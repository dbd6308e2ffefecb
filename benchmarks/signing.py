#!/usr/bin/env python3
"""Signing and verifying 1 GB of weights, against the time regops already spends hashing them; one Markdown table.

    python benchmarks/signing.py [--gib 1] [--repeat 3] [--workdir DIR]

Rows (median, min, max seconds over ``--repeat`` interleaved rounds, after one untimed warm-up of each):

* ``hash`` — :func:`regops.weights.hash_files`, what ``regops register`` pays anyway (and a download, re-hashing);
* ``hash + sign + verify`` — the same, then :func:`regops.signing.sign` and :func:`regops.signing.verify` over the
  digests just computed (what register and download do with signing on): the target is ≤ 1.3 times ``hash``;
* ``sign + verify alone`` — what signing adds to a register and a download, the digests given;
* ``model_signing sign + verify`` — the library's own ``signing.Config().sign`` and ``verifying.Config().verify``
  on the folder, which hash every file again, each: what regops avoids by signing its manifest.

Run it with the Python of the environment that has regops installed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from regops import signing
from regops.weights import hash_files

SHARD = 256 << 20  # 256 MiB per file, as a sharded checkpoint


def make_weights(folder: Path, gib: float) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names, left, index = [], int(gib * (1 << 30)), 0
    block = bytes(range(256)) * 4096  # 1 MiB; the content does not change sha256's speed
    while left > 0:
        size = min(SHARD, left)
        name = f"model-{index:05d}.safetensors"
        with (folder / name).open("wb") as out:
            for _ in range(size // len(block)):
                out.write(block)
            out.write(block[: size % len(block)])
        names.append(name)
        left, index = left - size, index + 1
    return names


def keys(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "bench.pem", folder / "bench.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def interleaved(rows: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Each row once untimed (page cache, imports), then ``repeat`` rounds of every row in turn: a burst of noise
    from other processes hits all rows alike."""
    for fn in rows.values():
        fn()
    runs: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):
        for name, fn in rows.items():
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regops-bench-sign-", dir=args.workdir) as tmp:
        root = Path(tmp)
        names = make_weights(root / "model", args.gib)
        private, public = keys(root)
        signer = signing.Signer(private)
        policy = {"keys": [public.name]}

        def regops_hash() -> None:
            hash_files(root / "model", names)

        def regops_sign_verify() -> None:
            hashed = hash_files(root / "model", names)
            data, _ = signing.sign(hashed, name="bench@1.0.0", signer=signer)
            signing.verify(data, hashed, policy=policy, root=root, ref="bench@1.0.0")

        digests = hash_files(root / "model", names)

        def sign_verify_only() -> None:
            data, _ = signing.sign(digests, name="bench@1.0.0", signer=signer)
            signing.verify(data, digests, policy=policy, root=root, ref="bench@1.0.0")

        def library() -> None:
            import model_signing

            sig = root / "library.sig"
            model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(root / "model", sig)
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(root / "model", sig)

        rows = interleaved(
            {
                "hash (regops.weights.hash_files)": regops_hash,
                "hash + sign + verify (regops.signing, the manifest)": regops_sign_verify,
                "sign + verify alone, over the digests": sign_verify_only,
                "model_signing sign + verify (re-hashes, twice)": library,
            },
            args.repeat,
        )
    base = statistics.median(next(iter(rows.values())))
    print(f"{args.gib:g} GiB in {len(names)} files, {args.repeat} timed runs each\n")
    print("| row | median s | min s | max s | vs hash |")
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.2f} | {min(runs):.2f} | {max(runs):.2f} | {median / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
