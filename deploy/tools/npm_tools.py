"""The npm development tooling of deploy/ (package.json here), which scripts/setup.sh installs
into MUPPET_NPM_DIR (default /opt/muppet/npm): a scratch directory that sees its node_modules,
and typescript's tsc run over a check.ts written there."""
import json
import os
import subprocess
import tempfile

NPM_DIR = os.environ.get("MUPPET_NPM_DIR", "/opt/muppet/npm")
TSC = os.path.join(NPM_DIR, "node_modules", ".bin", "tsc")
# Object literals checked with `satisfies`: strict, so unknown keys and wrong types both fail.
TSCONFIG = {"compilerOptions": {"strict": True, "noEmit": True, "module": "esnext",
                                "moduleResolution": "bundler", "target": "es2022",
                                "skipLibCheck": True},
            "files": ["check.ts"]}


def missing():
    """Why the tooling cannot run, or None when it can."""
    return None if os.access(TSC, os.X_OK) else f"{TSC} missing: run scripts/setup.sh"


def scratch_dir():
    """A new directory under TEST_TMPDIR with node_modules and tsconfig.json in place."""
    tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    os.symlink(os.path.join(NPM_DIR, "node_modules"), os.path.join(tmp, "node_modules"))
    with open(os.path.join(tmp, "tsconfig.json"), "w") as f:
        json.dump(TSCONFIG, f)
    return tmp


def type_check(directory, source):
    """Writes `source` to check.ts in `directory` (from scratch_dir) and runs tsc on it; returns
    the CompletedProcess."""
    with open(os.path.join(directory, "check.ts"), "w") as f:
        f.write(source)
    return subprocess.run([TSC, "-p", "tsconfig.json"], cwd=directory, capture_output=True,
                          text=True, timeout=120)
