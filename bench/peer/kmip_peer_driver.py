#!/usr/bin/python3
"""Closed-loop load driver: clavisd and a KMIP server, side by side.

Started by bench/peer/kmip_side_by_side.sh, which brings up both servers and
passes their addresses and the throwaway mTLS certificates. For each
operation and each number of callers N, it runs the same load against
clavisd and then against the KMIP server: N worker processes (one
connection each, so the GIL of one caller never slows another), each
calling in a loop with no think time; a warm-up whose calls are not
counted, then a fixed measured window. Reports throughput (completed
calls/s) and p50/p99 latency per operation, and the ratios clavisd/PyKMIP.

Operations (the nearest equivalents; bench/peer/README.md says why):
  create   Clavis KeyAdmin.CreateKey          KMIP Create (AES, 256 bits)
  encrypt  Clavis KeyManagement.Encrypt       KMIP Encrypt, AES-256-GCM, 16-byte tag, AAD
  decrypt  Clavis KeyManagement.Decrypt       KMIP Decrypt of the same

Clients: Python gRPC stubs generated at run time from proto/clavis/v1 with
grpc_tools.protoc, and PyKMIP's own client (kmip.pie.client.ProxyKmipClient;
its underlying KMIPProxy for Encrypt/Decrypt, whose payloads carry the GCM
tag and AAD that ProxyKmipClient's encrypt()/decrypt() drop).
"""

import argparse
import array
import json
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
import traceback

PAYLOAD_DEFAULT = 64
CONTEXT = {"app": "peer-bench", "purpose": "side-by-side"}
# KMIP's equivalent of the encryption context: the same bytes as GCM AAD.
AAD = json.dumps(CONTEXT, sort_keys=True).encode()
TENANT = "tenants/bench"
SEGMENT = "bench/peer"
KMIP_TAG_LENGTH = 16
SERVERS = ("clavisd", "PyKMIP")
MODES = {
    # quick: CI keeps the harness working (whole run well under 60 s).
    "quick": {"callers": [4], "warmup": 0.5, "duration": 1.5},
    "full": {"callers": [1, 4, 16], "warmup": 3.0, "duration": 10.0},
}


# --------------------------------------------------------------- Clavis side

def generate_stubs(proto_dir, out_dir):
    """Python gRPC stubs of the three protos the bench needs, at run time."""
    from grpc_tools import protoc
    import grpc_tools

    # access_control.proto uses proto3 `optional`, which Debian's
    # grpc-tools 1.14 protoc refuses; the bench does not need it.
    files = ["clavis/v1/resources.proto", "clavis/v1/key_admin.proto",
             "clavis/v1/key_management.proto"]
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", "-I" + proto_dir, "-I" + well_known, "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir] + [os.path.join(proto_dir, f) for f in files]
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed on " + " ".join(files))
    for pkg in ("clavis", "clavis/v1"):
        open(os.path.join(out_dir, pkg, "__init__.py"), "a").close()


def import_stubs(stub_dir):
    if stub_dir not in sys.path:
        sys.path.insert(0, stub_dir)
    from clavis.v1 import key_admin_pb2, key_admin_pb2_grpc  # noqa: F401
    from clavis.v1 import key_management_pb2, key_management_pb2_grpc  # noqa: F401
    return key_admin_pb2, key_admin_pb2_grpc, key_management_pb2, key_management_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ClavisClient:
    def __init__(self, cfg):
        import grpc
        self.ka, ka_grpc, self.km, km_grpc = import_stubs(cfg["stub_dir"])
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(cfg["ca"]), private_key=read(cfg["key"]),
            certificate_chain=read(cfg["cert"]))
        self.channel = grpc.secure_channel(cfg["clavis_address"], creds)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.admin = ka_grpc.KeyAdminStub(self.channel)
        self.data = km_grpc.KeyManagementStub(self.channel)
        self.key = cfg.get("clavis_key")
        self.prefix = "c" + secrets.token_hex(5)  # key ids unique across processes
        self.n = 0

    def close(self):
        self.channel.close()

    def create(self):
        self.n += 1
        return self.admin.CreateKey(
            self.ka.CreateKeyRequest(parent=TENANT, key_id="%s-%d" % (self.prefix, self.n)),
            timeout=30)

    def encrypt(self, plaintext):
        r = self.data.Encrypt(self.km.EncryptRequest(
            key=self.key, segment=SEGMENT, plaintext=plaintext, encryption_context=CONTEXT),
            timeout=30)
        return r.ciphertext_blob

    def decrypt(self, blob):
        return self.data.Decrypt(self.km.DecryptRequest(
            ciphertext_blob=blob, encryption_context=CONTEXT), timeout=30).plaintext


def clavis_setup(cfg):
    """The key the encrypt/decrypt runs use: usable by the bench principal."""
    c = ClavisClient(cfg)
    try:
        policy = json.dumps({
            "version": "2026-11-01", "allowAdminAndDataToSamePrincipal": True,
            "statements": [{"sid": "bench", "effect": "Allow",
                            "principals": [cfg["principal"]], "actions": ["*"]}]})
        key = c.admin.CreateKey(c.ka.CreateKeyRequest(
            parent=TENANT, key_id="peer-data", policy=policy), timeout=30)
        return key.name
    finally:
        c.close()


# ----------------------------------------------------------------- KMIP side

class KmipClient:
    def __init__(self, cfg):
        from kmip.core import enums
        from kmip.core.messages import payloads
        from kmip.core.attributes import CryptographicParameters
        from kmip.pie.client import ProxyKmipClient
        self.enums, self.payloads = enums, payloads
        # An empty client configuration file: every setting comes from here.
        self.client = ProxyKmipClient(
            hostname="127.0.0.1", port=cfg["kmip_port"], cert=cfg["cert"], key=cfg["key"],
            ca=cfg["ca"], ssl_version="PROTOCOL_TLSv1_2",
            config_file=cfg["kmip_client_conf"],
            kmip_version=enums.KMIPVersion.KMIP_1_4)  # 1.4: GCM tag and AAD fields
        self.client.open()
        self.key = cfg.get("kmip_key")
        self.params = CryptographicParameters(
            block_cipher_mode=enums.BlockCipherMode.GCM,
            cryptographic_algorithm=enums.CryptographicAlgorithm.AES,
            tag_length=KMIP_TAG_LENGTH)

    def close(self):
        self.client.close()

    def create(self):
        e = self.enums
        return self.client.create(
            e.CryptographicAlgorithm.AES, 256,
            cryptographic_usage_mask=[e.CryptographicUsageMask.ENCRYPT,
                                      e.CryptographicUsageMask.DECRYPT])

    def encrypt(self, plaintext):
        r = self.client.proxy.send_request_payload(
            self.enums.Operation.ENCRYPT,
            self.payloads.EncryptRequestPayload(
                unique_identifier=self.key, cryptographic_parameters=self.params,
                data=plaintext, auth_additional_data=AAD))
        # The server picks the IV; the "blob" is (IV, ciphertext, tag).
        return (r.iv_counter_nonce, r.data, r.auth_tag)

    def decrypt(self, blob):
        iv, data, tag = blob
        r = self.client.proxy.send_request_payload(
            self.enums.Operation.DECRYPT,
            self.payloads.DecryptRequestPayload(
                unique_identifier=self.key, cryptographic_parameters=self.params,
                data=data, iv_counter_nonce=iv, auth_additional_data=AAD, auth_tag=tag))
        return r.data


def kmip_setup(cfg):
    """An AES-256 key, activated (KMIP Create leaves it Pre-Active)."""
    c = KmipClient(cfg)
    try:
        uid = c.create()
        c.client.activate(uid)
        return uid
    finally:
        c.close()


# ------------------------------------------------------------------- workers

def make_call(server, op, cfg):
    """(client, a function doing one call): connected and checked once."""
    client = ClavisClient(cfg) if server == "clavisd" else KmipClient(cfg)
    plaintext = os.urandom(cfg["payload"])
    if op == "create":
        call = client.create
    elif op == "encrypt":
        def call():
            return client.encrypt(plaintext)
    elif op == "decrypt":
        blob = client.encrypt(plaintext)

        def call():
            return client.decrypt(blob)
    else:
        raise ValueError("unknown op " + op)
    # One call before the start: the connection (TLS handshake) is up and the
    # operation works; the decrypt round trip is checked.
    out = call()
    if op == "decrypt" and out != plaintext:
        raise RuntimeError("%s decrypt returned other bytes" % server)
    return client, call


def worker(idx, cfg, cmd_q, res_q):
    """Persistent worker process: one phase per command."""
    if cfg.get("pin_callers", -1) >= 0:
        os.sched_setaffinity(0, {cfg["pin_callers"]})
    while True:
        cmd = cmd_q.get()
        if cmd is None:
            return
        server, op = cmd["server"], cmd["op"]
        client = None
        try:
            client, call = make_call(server, op, cfg)
        except Exception:
            res_q.put(("error", idx, "%s %s setup: %s" % (server, op, traceback.format_exc())))
            if client is not None:
                client.close()
            cmd_q.get()  # the go (or abort) message
            continue
        res_q.put(("ready", idx))
        go = cmd_q.get()
        if go is None or go.get("abort"):
            client.close()
            continue
        t0 = go["t0"]
        warm_end = t0 + go["warmup"]
        end = warm_end + go["duration"]
        lat = array.array("d")
        errors, first_error = 0, ""
        while time.monotonic() < t0:
            time.sleep(0.001)
        mono = time.monotonic
        cpu_start = None  # this process's CPU (all threads) from the window's start
        while True:
            s = mono()
            if s >= end:
                break
            if cpu_start is None and s >= warm_end:
                cpu_start = time.process_time()
            try:
                call()
            except Exception as e:  # counted, reported; the loop goes on
                errors += 1
                if not first_error:
                    first_error = "%s: %s" % (type(e).__name__, str(e)[:300])
                if errors >= 1000:
                    break
                continue
            e_ = mono()
            if warm_end <= e_ <= end:
                lat.append(e_ - s)
        cpu = time.process_time() - cpu_start if cpu_start is not None else 0.0
        client.close()
        res_q.put(("done", idx, lat.tobytes(), errors, first_error, cpu))


def group_cpu_seconds(pgid):
    """user+system CPU of every live process in process group `pgid` (the
    server and, for PyKMIP, its multiprocessing manager and policy monitor).
    None when unknown."""
    if not pgid:
        return None
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "pid (comm)": state ppid pgrp ... utime(12th) stime(13th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def sleep_until(t):
    while True:
        left = t - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def run_phase(workers, server, op, n, warmup, duration, pgid):
    used = workers[:n]
    for _, cmd_q in used:
        cmd_q.put({"server": server, "op": op})
    ready, errors = 0, []
    while ready + len(errors) < n:
        msg = RES_Q.get(timeout=120)
        if msg[0] == "ready":
            ready += 1
        else:
            errors.append(msg[2])
    if errors:
        for _, cmd_q in used:
            cmd_q.put({"abort": True})
        raise RuntimeError(errors[0])
    t0 = time.monotonic() + 0.05
    for _, cmd_q in used:
        cmd_q.put({"t0": t0, "warmup": warmup, "duration": duration})
    sleep_until(t0 + warmup)
    cpu0 = group_cpu_seconds(pgid)
    sleep_until(t0 + warmup + duration)
    cpu1 = group_cpu_seconds(pgid)
    lat = array.array("d")
    errs, first_error, client_cpu = 0, "", 0.0
    for _ in range(n):
        msg = RES_Q.get(timeout=warmup + duration + 120)
        part = array.array("d")
        part.frombytes(msg[2])
        lat.extend(part)
        errs += msg[3]
        first_error = first_error or msg[4]
        client_cpu += msg[5]
    values = sorted(lat)
    return {"server": server, "op": op, "callers": n, "calls": len(values),
            "ops_per_s": len(values) / duration,
            "p50_ms": percentile(values, 0.50) * 1e3, "p99_ms": percentile(values, 0.99) * 1e3,
            "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
            "client_cpu_s": client_cpu,
            "errors": errs, "first_error": first_error}


RES_Q = None


def fmt(x, digits=1):
    return "n/a" if x != x else ("%.*f" % (digits, x))


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


def main():
    global RES_Q
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), default="full")
    p.add_argument("--callers", help="comma-separated caller counts (default: per mode)")
    p.add_argument("--warmup", type=float)
    p.add_argument("--duration", type=float)
    p.add_argument("--ops", default="create,encrypt,decrypt")
    p.add_argument("--payload", type=int, default=PAYLOAD_DEFAULT)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--proto_dir", required=True)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--clavis_address", required=True)
    p.add_argument("--kmip_port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--principal", required=True)
    p.add_argument("--clavisd_binary", default="")
    p.add_argument("--clavisd_pgid", type=int, default=0, help="for the server CPU figures")
    p.add_argument("--kmip_pgid", type=int, default=0)
    p.add_argument("--pin_callers", type=int, default=-1,
                   help="run the callers (and this process) on this CPU; the servers are "
                        "pinned by the script")
    a = p.parse_args()

    mode = MODES[a.mode]
    callers = [int(x) for x in a.callers.split(",")] if a.callers else mode["callers"]
    warmup = a.warmup if a.warmup is not None else mode["warmup"]
    duration = a.duration if a.duration is not None else mode["duration"]
    ops = [o.strip() for o in a.ops.split(",") if o.strip()]

    stub_dir = tempfile.mkdtemp(prefix="stubs.", dir=a.work_dir)
    generate_stubs(a.proto_dir, stub_dir)
    kmip_conf = os.path.join(a.work_dir, "pykmip-client.conf")
    with open(kmip_conf, "w") as f:
        f.write("[client]\n")
    cfg = {"stub_dir": stub_dir, "clavis_address": a.clavis_address, "kmip_port": a.kmip_port,
           "ca": a.ca, "cert": a.cert, "key": a.key, "principal": a.principal,
           "kmip_client_conf": kmip_conf, "payload": a.payload, "pin_callers": a.pin_callers}
    if a.pin_callers >= 0:
        os.sched_setaffinity(0, {a.pin_callers})
    cfg["clavis_key"] = clavis_setup(cfg)
    cfg["kmip_key"] = kmip_setup(cfg)

    import grpc
    import kmip
    import platform
    print("clavisd vs PyKMIP, side by side (%s mode): closed loop, %s callers (one process "
          "and one connection each), warm-up %.1f s, measured %.1f s per operation and server"
          % (a.mode, "/".join(map(str, callers)), warmup, duration))
    print("  clavisd %s at %s: mutual TLS (gRPC), audit log on, --rate_limit_rps lifted"
          % (a.clavisd_binary or "", a.clavis_address))
    print("  PyKMIP %s server at 127.0.0.1:%d: TLS 1.2 with client certificate, sqlite, "
          "logging WARNING" % (getattr(kmip, "__version__", "?"), a.kmip_port))
    print("  clients: Python %s, grpcio %s stubs / PyKMIP ProxyKmipClient (KMIP 1.4); "
          "payload %d bytes; %d CPUs, %s" % (
              platform.python_version(), grpc.__version__, a.payload, os.cpu_count(),
              "servers on CPU 1, callers on CPU %d" % a.pin_callers if a.pin_callers >= 0
              else "not pinned"))
    sys.stdout.flush()

    ctx = mp.get_context("spawn")  # no gRPC state inherited across fork
    RES_Q = ctx.Queue()
    workers = []
    for i in range(max(callers)):
        q = ctx.Queue()
        proc = ctx.Process(target=worker, args=(i, cfg, q, RES_Q), daemon=True)
        proc.start()
        workers.append((proc, q))
    results = []
    try:
        for op in ops:
            for n in callers:
                for server in SERVERS:
                    pgid = a.clavisd_pgid if server == "clavisd" else a.kmip_pgid
                    results.append(run_phase(workers, server, op, n, warmup, duration, pgid))
    finally:
        for proc, q in workers:
            q.put(None)
        for proc, _ in workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()

    by = {(r["server"], r["op"], r["callers"]): r for r in results}

    def cpu_ms(r, which="server_cpu_s"):
        if r[which] is None or not r["calls"]:
            return float("nan")
        return r[which] * 1e3 / r["calls"]

    print()
    print("| operation | callers | clavisd ops/s | PyKMIP ops/s | ops/s clavisd/PyKMIP "
          "| clavisd p50 / p99 ms | PyKMIP p50 / p99 ms | p50 clavisd/PyKMIP | p99 clavisd/PyKMIP |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in ops:
        for n in callers:
            c, k = by[("clavisd", op, n)], by[("PyKMIP", op, n)]
            print("| %s | %d | %s | %s | **%s** | %s / %s | %s / %s | %s | %s |" % (
                op, n, fmt(c["ops_per_s"], 0), fmt(k["ops_per_s"], 0),
                fmt(ratio(c["ops_per_s"], k["ops_per_s"]), 2),
                fmt(c["p50_ms"], 2), fmt(c["p99_ms"], 2), fmt(k["p50_ms"], 2), fmt(k["p99_ms"], 2),
                fmt(ratio(c["p50_ms"], k["p50_ms"]), 3), fmt(ratio(c["p99_ms"], k["p99_ms"]), 3)))
    print()
    print("CPU per call over the measured window: the server's (user+system of its process "
          "group) and the callers' (all their threads; the Python client libraries):")
    print()
    print("| operation | callers | clavisd server CPU ms/call | PyKMIP server CPU ms/call "
          "| server CPU clavisd/PyKMIP | gRPC client CPU ms/call | PyKMIP client CPU ms/call |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for op in ops:
        for n in callers:
            c, k = by[("clavisd", op, n)], by[("PyKMIP", op, n)]
            print("| %s | %d | %s | %s | **%s** | %s | %s |" % (
                op, n, fmt(cpu_ms(c), 3), fmt(cpu_ms(k), 3), fmt(ratio(cpu_ms(c), cpu_ms(k)), 3),
                fmt(cpu_ms(c, "client_cpu_s"), 3), fmt(cpu_ms(k, "client_cpu_s"), 3)))
    print()
    failed = False
    for r in results:
        if r["errors"] or not r["calls"]:
            print("  %s %s x%d: %d calls, %d errors; first: %s" % (
                r["server"], r["op"], r["callers"], r["calls"], r["errors"], r["first_error"]))
            failed = failed or not r["calls"]
    print("ops/s ratio > 1: clavisd completes more calls; latency and CPU ratios < 1: clavisd "
          "answers faster / spends less. Figures only: nothing is asserted about speed.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"mode": a.mode, "warmup_s": warmup, "duration_s": duration,
                       "payload_bytes": a.payload, "results": results}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
