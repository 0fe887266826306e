#!/usr/bin/env python3
"""topology.py — check_deploy.py's `topology` check: deploy/compose.yaml's topology run without
containers (see check_topology), for a machine with no container runtime."""
import glob
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from check_deploy import engine_services, env_of, load_yaml_docs, run, skip

# ---- topology --------------------------------------------------------------------------------

def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def wait_for(what, cond, deadline_s, step=0.5, seen=None):
    """cond() until it returns a true value (that value), or fail naming `what` (and what
    seen(), if given, says of the last try)."""
    end = time.time() + deadline_s
    while time.time() < end:
        last = cond()
        if last:
            return last
        time.sleep(step)
    raise RuntimeError(f"timed out after {deadline_s} s waiting for {what}"
                       + (f" (last seen: {seen()})" if seen else ""))


def gauge(text, name):
    vals = re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    return sum(float(v) for v in vals) if vals else None


def psql(dsn, sql):
    r = run(["psql", dsn, "-AtXq", "-c", sql], timeout=30)
    return r.stdout.strip() if r.returncode == 0 else None


class Procs:
    """Processes the check started, each stopped by its own id at the end."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, log, **kw):
        f = open(log, "w")
        p = subprocess.Popen(cmd, stdout=kw.pop("stdout", f), stderr=f, **kw)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def compose_topics(compose):
    """name:partitions of the kafka-init service's topic loop."""
    text = json.dumps([s for n, s in compose["services"].items() if "init" in n])
    return re.findall(r"([A-Za-z0-9._-]+:\d+)", text.split("for t in", 1)[1].split(";", 1)[0])


def check_topology(src, binary):
    """The compose stack's topology without containers: the mock broker stands for the Kafka
    service, with-postgres.sh's server for the PostgreSQL service, Debian's prometheus and
    prometheus-alertmanager for theirs, and two `neuralops serve` run with the stack's own
    config file and environment. Only what a container provides differently is overridden
    (broker address, paths, listen address, the DSN's host): printed below."""
    base_dsn = os.environ.get("NEURALOPS_TEST_PG_DSN")
    broker_bin = os.environ.get("NOPS_MOCK_BROKER")
    if not base_dsn:
        skip("topology: NEURALOPS_TEST_PG_DSN unset (run through tests/with-postgres.sh)")
        return []
    for tool in ("kcat", "prometheus", "prometheus-alertmanager", "psql"):
        if not shutil.which(tool):
            return [f"topology: {tool} not found (deploy/install-deps.sh installs it)"]
    d = os.path.join(src, "deploy")
    compose = load_yaml_docs(os.path.join(d, "compose.yaml"))[0]
    ini_path = os.path.join(d, "compose", "neuralops.ini")
    engines = engine_services(compose)
    schema = "deploy_topology"
    if psql(base_dsn, f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} "
            f"CASCADE; CREATE SCHEMA {schema}") is None:
        return ["topology: cannot make the PostgreSQL schema"]
    dsn = f"{base_dsn} options=-csearch_path={schema}"
    procs, problems = Procs(), []
    tmp = tempfile.mkdtemp(prefix="nops-topology-")
    try:
        topics = compose_topics(compose)
        broker = procs.start("broker", [broker_bin] + topics, os.path.join(tmp, "broker.log"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        boot = broker.stdout.readline().strip()
        if not boot:
            return ["topology: the mock broker did not start"]
        print(f"broker {boot}, topics {' '.join(topics)} (from kafka-init)")
        am_port = free_port()
        procs.start("alertmanager", ["prometheus-alertmanager", "--config.file=" +
                                     os.path.join(d, "compose", "alertmanager.yml"),
                                     "--storage.path=" + os.path.join(tmp, "am"),
                                     f"--web.listen-address=127.0.0.1:{am_port}",
                                     "--cluster.listen-address="],
                    os.path.join(tmp, "alertmanager.log"))
        ports = {}
        actor = os.urandom(32).hex()
        for name, svc in sorted(engines.items()):
            port = free_port()
            ports[name] = port
            env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALOPS_")}
            for k, v in env_of(svc).items():
                env[k] = re.sub(r"\$\{([A-Z_]+)[^}]*\}",
                                lambda m: actor if m.group(1) == "NEURALOPS_VECTOR_ACTOR_KEY"
                                else "unused", str(v))
            home = os.path.join(tmp, name)
            over = {"NEURALOPS_KAFKA_BROKERS": boot,
                    "NEURALOPS_STORAGE_DATA_DIR": os.path.join(home, "data"),
                    "NEURALOPS_SECURITY_KEY_FILE": os.path.join(home, "keys", "engine.key"),
                    "NEURALOPS_RECOMMEND_INDEX_DIR": os.path.join(home, "data", "index"),
                    "NEURALOPS_API_LISTEN": f"127.0.0.1:{port}",
                    "NEURALOPS_NOTIFY_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}",
                    "NEURALOPS_SINKS_POSTGRES_DSN": dsn}
            env.update(over, HOME=home)
            os.makedirs(home)
            print(f"{name}: serve -c deploy/compose/neuralops.ini, group "
                  f"{env.get('NEURALOPS_KAFKA_GROUP')}, overrides: "
                  + ", ".join(f"{k}" for k in over))
            procs.start(name, [binary, "serve", "-c", ini_path],
                        os.path.join(tmp, name + ".log"), env=env, cwd=home,
                        stdin=subprocess.DEVNULL)

        last = {}

        def split():
            got = last
            for name, port in ports.items():
                st, _ = http_get(f"http://127.0.0.1:{port}/readyz")
                _, text = http_get(f"http://127.0.0.1:{port}/metrics")
                got[name] = (st, gauge(text, "neuralops_partitions_assigned"))
            n = int(topics[0].split(":")[1])
            ok = all(st == 200 and (p or 0) > 0 for st, p in got.values()) and \
                sum(p or 0 for _, p in got.values()) == n
            return got if ok else None
        got = wait_for("both engines ready with the partitions shared out", split, 240,
                       seen=lambda: last)
        print("ready, partitions: " + ", ".join(f"{k} {int(v[1])}" for k, v in got.items()))

        # points keyed by host, as producers must: a spike per host after the warm-up
        now = int(time.time())
        lines = []
        rnd = random.Random(17)
        for i in range(300):
            for h in range(24):
                v = 100.0 if i == 250 else rnd.gauss(10, 1)
                lines.append(f"web-{h:02d}\tcpu,host=web-{h:02d},service=web usage_user={v:.3f} "
                             f"{(now - 300 + i) * 1000000000}")
        r = subprocess.run(["kcat", "-P", "-b", boot, "-t", topics[0].split(":")[0], "-K", "\t"],
                           input="\n".join(lines) + "\n", text=True, capture_output=True,
                           timeout=120)
        if r.returncode != 0:
            return [f"topology: kcat: {r.stderr.strip()}"]
        hosts = wait_for("a signal of every host in the shared PostgreSQL", lambda: (
            psql(dsn, "SELECT count(DISTINCT labels->>'host') FROM insight_signals") == "24"),
            240)
        per = {}
        for name, port in ports.items():
            _, text = http_get(f"http://127.0.0.1:{port}/metrics")
            per[name] = gauge(text, "neuralops_signals_total") or 0
        inc = wait_for("an incident in the shared PostgreSQL", lambda: int(
            psql(dsn, "SELECT count(*) FROM incidents") or 0), 60)
        print(f"signals of 24 hosts in PostgreSQL; per instance {per}; incidents {inc}")
        if hosts and not all(per.values()):
            problems.append(f"topology: an instance raised no signal: {per}")

        # Prometheus with the stack's config: both engines scraped, the rules loaded and healthy
        prom = load_yaml_docs(os.path.join(d, "compose", "prometheus.yml"))[0]
        prom["global"].update(scrape_interval="1s", evaluation_interval="1s")
        prom["rule_files"] = [os.path.join(d, "prometheus", "neuralops-rules.yml")]
        prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{am_port}"]
        for job in prom["scrape_configs"]:
            if job["job_name"] == "neuralops":
                tg = job["static_configs"][0]["targets"]
                job["static_configs"][0]["targets"] = [
                    f"127.0.0.1:{ports[t.split(':')[0]]}" for t in tg]
        prom_port = free_port()
        job = next(j for j in prom["scrape_configs"] if j["job_name"] == "prometheus")
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{prom_port}"]
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            yaml.safe_dump(prom, f)
        procs.start("prometheus", ["prometheus", "--config.file=" +
                                   os.path.join(tmp, "prometheus.yml"),
                                   "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                                   f"--web.listen-address=127.0.0.1:{prom_port}"],
                    os.path.join(tmp, "prometheus.log"))
        q = lambda e: http_get(f"http://127.0.0.1:{prom_port}/api/v1/query?" +
                               urllib.parse.urlencode({"query": e}))[1]

        def scraped():
            up = json.loads(q('up{job="neuralops"} == 1') or "{}")
            parts = json.loads(q("sum(neuralops_partitions_assigned)") or "{}")
            res = (up.get("data") or {}).get("result") or []
            pr = (parts.get("data") or {}).get("result") or []
            return len(res) == len(ports) and pr and float(pr[0]["value"][1]) == \
                float(topics[0].split(":")[1])
        wait_for("Prometheus scraping both engines", scraped, 120)
        rules = json.loads(http_get(f"http://127.0.0.1:{prom_port}/api/v1/rules")[1])
        loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        want = sum(len(g["rules"]) for g in load_yaml_docs(
            os.path.join(d, "prometheus", "neuralops-rules.yml"))[0]["groups"])
        wait_for("the rules evaluated", lambda: all(
            r.get("health") == "ok" for g in json.loads(http_get(
                f"http://127.0.0.1:{prom_port}/api/v1/rules")[1])["data"]["groups"]
            for r in g["rules"]), 60)
        if len(loaded) != want:
            problems.append(f"topology: Prometheus loaded {len(loaded)} rules of {want}")
        print(f"Prometheus scrapes both engines; {len(loaded)} rules loaded, all healthy")

        # the engines' incidents reach Alertmanager
        def alerted():
            st, text = http_get(f"http://127.0.0.1:{am_port}/api/v2/alerts")
            al = json.loads(text) if st == 200 else []
            return [a for a in al if a["labels"].get("alertname") == "NeuralOpsIncident"]
        al = wait_for("an engine incident in Alertmanager", alerted, 120)
        print(f"Alertmanager holds {len(al)} NeuralOpsIncident alert(s), severities "
              f"{sorted(set(a['labels'].get('severity') for a in al))}")

        # SIGTERM drains each engine: exit 0, and each instance's own state dir has snapshots
        for name, p in procs.procs:
            if name in engines:
                p.terminate()
                rc = p.wait(timeout=120)
                snaps = glob.glob(os.path.join(tmp, name, "data", "state", "*.snap"))
                print(f"{name}: exit {rc} on SIGTERM, {len(snaps)} partition snapshots")
                if rc != 0 or not snaps:
                    problems.append(f"topology: {name} exit {rc}, {len(snaps)} snapshots")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        problems.append(f"topology: {e}")
        for name in sorted(engines) + ["prometheus", "alertmanager"]:
            log = os.path.join(tmp, name + ".log")
            if os.path.exists(log):
                text = open(log, errors="replace").read()
                keep = [x for x in text.splitlines() if '"module":"http"' not in x]
                print(f"--- {name}.log (tail)\n" + "\n".join(keep[-40:]))
    finally:
        procs.stop_all()
        psql(base_dsn, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        shutil.rmtree(tmp, ignore_errors=True)
    return problems
