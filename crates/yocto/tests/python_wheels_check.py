"""What python_wheels.py checks with the layer's Python libraries: run by the python whose
environment holds exactly those libraries, at the pinned layers' versions, under faketime.

Usage: python python_wheels_check.py SPEC_JSON   (run in a scratch directory: the verifier
writes verifier.log into the current directory when imported)

SPEC_JSON (written by python_wheels.py) lists each wheel recipe with the site-packages directory
its do_install filled, its .dist-info and its RDEPENDS, and the layers' Python recipes.

1. Every module each wheel installed (from its RECORD) imports.
2. Each package a wheel's modules import (ast, absolute imports), other than the standard
   library and the wheel's own, belongs to a distribution (importlib.metadata) whose recipe,
   python3-<normalized name>, is in the wheel recipe's RDEPENDS and exists: one of the layers'
   Python recipes or one of meta-secret's. Files whose path is not a module name (signxml's
   PyInstaller hook, hook-signxml.py) are never imported by name and are not read.
3. NVIDIA's reference-integrity manifests shipped with the GPU verifier (verifier/samples/
   *_PROD.swidtag, signed by NVIDIA) pass the verifier's own checks: schema, certificate chain
   to its bundled RIM root, XML signature (signxml, lxml, cryptography, pyOpenSSL of the
   layers). The same manifest with one measurement changed must fail the signature check.

Prints what each step found; exits 0 when all passed, 1 otherwise.
"""

import ast
import importlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import time


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def modules_of(dist_info, site):
    """(module name, file) for every importable .py file the wheel's RECORD lists."""
    out = []
    with open(os.path.join(dist_info, "RECORD")) as f:
        for line in f:
            path = line.rsplit(",", 2)[0]
            if not path.endswith(".py") or ".dist-info/" in path:
                continue
            parts = path[: -len(".py")].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and all(p.isidentifier() for p in parts):
                out.append((".".join(parts), os.path.join(site, path)))
    return out


def third_party_imports(files, own):
    found = {}
    for path in files:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own:
                    found.setdefault(top, os.path.basename(path))
    return found


def check_rdepends(recipe, modules, providers, known):
    own = {m.split(".")[0] for m, _ in modules}
    problems = []
    for top, where in sorted(third_party_imports([p for _, p in modules], own).items()):
        dists = providers.get(top)
        if not dists:
            problems.append("%s imports %s (%s), which no installed distribution provides"
                            % (recipe["recipe"], top, where))
            continue
        dep = "python3-" + normalized(dists[0])
        if dep not in known:
            problems.append("%s imports %s (%s) from %s, which no layer has a recipe for"
                            % (recipe["recipe"], top, where, dists[0]))
        elif dep not in recipe["rdepends"]:
            problems.append("%s imports %s (%s) but its RDEPENDS lacks %s"
                            % (recipe["recipe"], top, where, dep))
    return problems


def check_rims():
    from OpenSSL import crypto

    import verifier
    from verifier.cc_admin_utils import CcAdminUtils
    from verifier.config import BaseSettings, HopperSettings
    from verifier.rim import RIM

    logging.disable(logging.CRITICAL)  # the verifier logs every step; its results are checked
    base = verifier.__path__[0]
    schema = os.path.join(base, "rim", "swidSchema2015.xsd")
    samples = sorted(f for f in os.listdir(os.path.join(base, "samples")) if f.endswith("_PROD.swidtag"))
    if not samples:
        return ["no *_PROD.swidtag sample in %s/samples" % base]
    mode = BaseSettings.Certificate_Chain_Verification_Mode.VBIOS_RIM_CERT

    def verify(rim, settings):
        if not rim.validate_schema(schema):
            return "schema"
        chain = rim.extract_certificates()
        with open(settings.RIM_ROOT_CERT) as f:
            chain.append(crypto.load_certificate(crypto.FILETYPE_PEM, f.read()))
        if not CcAdminUtils.verify_certificate_chain(chain, settings, mode):
            return "certificate chain"
        try:
            rim.verify_signature(settings)
        except Exception as e:  # noqa: BLE001  (the verifier raises its own error types)
            return "signature (%s)" % type(e).__name__
        return None

    problems = []
    for name in samples:
        settings = HopperSettings()
        failed = verify(RIM("vbios", settings, rim_path=os.path.join(base, "samples", name)), settings)
        if failed:
            problems.append("%s fails the %s check" % (name, failed))
    print("step 3: %d of NVIDIA's signed RIM samples pass schema, certificate chain and signature "
          "checks" % (len(samples) - len(problems)))

    with open(os.path.join(base, "samples", samples[0]), encoding="utf-8") as f:
        text = f.read()
    digest = next(m for m in re.finditer(r'Hash0="([0-9a-f]+)"', text) if set(m.group(1)) != {"0"})
    flipped = "0" if digest.group(1)[0] != "0" else "1"
    tampered = text[: digest.start(1)] + flipped + text[digest.start(1) + 1:]
    settings = HopperSettings()
    failed = verify(RIM("vbios", settings, content=tampered), settings)
    if failed and failed.startswith("signature"):
        print("step 3: %s with one measurement changed fails the %s check" % (samples[0], failed))
    else:
        problems.append("%s with one measurement changed was accepted (%s)" % (samples[0], failed))
    return problems


def main(argv):
    with open(argv[1]) as f:
        spec = json.load(f)
    print("checker: python %s, clock %s UTC" % (sys.version.split()[0],
                                                 time.strftime("%Y-%m-%d", time.gmtime())))
    for r in spec["recipes"]:
        sys.path.insert(0, r["site"])
    importlib.invalidate_caches()
    providers = importlib.metadata.packages_distributions()
    known = set(spec["layer_recipes"]) | {r["recipe"] for r in spec["recipes"]}
    problems = []
    for r in spec["recipes"]:
        modules = modules_of(r["dist_info"], r["site"])
        failed = []
        for name, _ in modules:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001  (any import error is the finding)
                failed.append("%s: %s: %s" % (name, type(e).__name__, e))
        problems += ["%s: cannot import %s" % (r["recipe"], f) for f in failed]
        print("step 1: %s: %d of %d modules import" % (r["recipe"], len(modules) - len(failed), len(modules)))
        found = check_rdepends(r, modules, providers, known)
        problems += found
        if not found:
            print("step 2: %s: every third-party import is in RDEPENDS" % r["recipe"])
    problems += check_rims()
    for p in problems:
        print("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
