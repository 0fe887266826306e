#!/usr/bin/env python3
"""check_deploy.py — what this machine can check of deploy/ (ctest deploy_*).

    check_deploy.py SRC NEURALOPS_BIN CHECK

CHECK is one of:
  yaml        every YAML file under deploy/ parses (every document of it)
  compose     deploy/compose.yaml: the services, two or more engines in one consumer group with
              their own state volumes sharing one database, Kafka in KRaft mode, topics made
              before the engines start, Prometheus scraping every engine, the engine config
              accepted by the binary, every NEURALOPS_* variable a real setting; promtool check
              config and amtool check-config on the Prometheus and Alertmanager configs;
              `docker compose config` where a compose plugin exists
  k8s         deploy/k8s/: the kinds, probes on /healthz and /readyz at the container's port,
              scrape annotations, resources, selectors, placeholders in the Secrets, the
              ConfigMap's config accepted by the binary; `kubectl kustomize` where kubectl exists,
              `kubectl apply --dry-run=client` where it reaches an API server
  dockerfile  deploy/Dockerfile: stages on Debian 12, non-root user, the volume, the exposed port,
              HEALTHCHECK and ENTRYPOINT; every shared library the built binary needs comes from a
              package the runtime stage installs; `docker build` where a daemon answers
  metrics     every metric named by deploy/prometheus/neuralops-rules.yml and
              deploy/grafana/neuralops.json is in the /metrics output of a running engine
              (`neuralops demo`) or in the documented process metrics; the dashboard's shape
  topology    the compose stack's topology run without containers: a mock Kafka cluster with
              the kafka-init topics, two `neuralops serve` with the stack's config and
              environment in one group on one PostgreSQL (tests/with-postgres.sh), each with its
              own data dir; both ready with the partitions shared out, a signal of every host in
              the shared database, Prometheus (the stack's config) scraping both and evaluating
              the rules, the engines' incidents in Alertmanager (the stack's config), SIGTERM
              drains each with its own snapshots
  selftest    each checker above refuses a broken copy of the real file (so none of them
              passes by accident)

Each checker returns a list of problems; main prints them and exits 1 when there are any.
A step that needs what this machine lacks (a docker daemon, a Kubernetes API server) is skipped
with its reason printed, never passed silently.
"""
import configparser
import copy
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.dont_write_bytecode = True  # the topology check's module is imported from the source tree

# Metric names another part of issue 17 adds (process collector and build info); allowed in the
# rules and the dashboard even where the engine under test does not expose them yet.
DOCUMENTED_PROCESS_METRICS = {
    "process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_open_fds", "neuralops_build_info",
}
METRIC_RE = re.compile(r"\b((?:neuralops|process)_[a-z0-9_]+)\b")
ENGINE_DATA = "/var/lib/neuralops"


def skip(why):
    print("SKIPPED: " + why)


def run(cmd, env=None, timeout=120, cwd=None):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---- the engine's own judgement of a config ---------------------------------------------------

def check_engine_config(binary, ini_text, env_names, what):
    """The binary must accept the INI (`config show -c`) and know every NEURALOPS_* name."""
    problems = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "neuralops.ini")
        with open(path, "w", encoding="utf-8") as f:
            f.write(ini_text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALOPS_")}
        env["HOME"] = d
        env["XDG_CONFIG_HOME"] = d
        for name in env_names:
            env[name] = "host=x" if name.endswith("_DSN") else "0" * 64 if "KEY" in name else "x"
        r = run([binary, "config", "show", "-c", path], env=env)
        if r.returncode != 0:
            problems.append(f"{what}: neuralops config show refuses it: {r.stderr.strip()}")
        for line in r.stderr.splitlines():
            if "is not a setting" in line:
                problems.append(f"{what}: {line.strip()}")
    return problems


def ini_get(ini_text, section, key):
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    cp.read_string(ini_text)
    return cp.get(section, key, fallback=None)


# ---- yaml ------------------------------------------------------------------------------------

def check_yaml(src):
    problems, n = [], 0
    files = sorted(glob.glob(os.path.join(src, "deploy", "**", "*.y*ml"), recursive=True))
    for path in files:
        try:
            docs = load_yaml_docs(path)
            if not docs:
                problems.append(f"{path}: no YAML document")
            n += 1
        except yaml.YAMLError as e:
            problems.append(f"{path}: {e}")
    if n < 8:
        problems.append(f"only {n} YAML files under deploy/ (compose, its configs, k8s, rules)")
    print(f"{n} YAML files parsed")
    return problems


# ---- compose ---------------------------------------------------------------------------------

def engine_services(compose):
    out = {}
    for name, svc in (compose.get("services") or {}).items():
        build = svc.get("build") or {}
        if (isinstance(build, dict) and str(build.get("dockerfile", "")).endswith(
                "deploy/Dockerfile")) or str(svc.get("image", "")).startswith("neuralops"):
            out[name] = svc
    return out


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return env


def mounted_at(svc, target):
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and parts[1] == target:
                return parts[0]
        elif isinstance(v, dict) and v.get("target") == target:
            return v.get("source")
    return None


def check_compose_doc(compose, ini_text, prom_cfg):
    """Structure of a parsed compose file; ini_text is the engines' config file."""
    problems = []
    services = compose.get("services") or {}
    volumes = compose.get("volumes") or {}
    kafka = [n for n, s in services.items() if "kafka" in str(s.get("image", ""))
             and "KAFKA_PROCESS_ROLES" in env_of(s)]
    if not kafka:
        problems.append("no Kafka service in KRaft mode (KAFKA_PROCESS_ROLES)")
    elif "controller" not in str(env_of(services[kafka[0]])["KAFKA_PROCESS_ROLES"]):
        problems.append("the Kafka service is not its own KRaft controller")
    if any("zookeeper" in str(s.get("image", "")) for s in services.values()):
        problems.append("a ZooKeeper service: the stack is meant to run KRaft")
    for want in ("postgres", "prometheus", "alertmanager"):
        if not any(want in str(s.get("image", "")) for s in services.values()):
            problems.append(f"no {want} service")
    engines = engine_services(compose)
    if len(engines) < 2:
        problems.append(f"{len(engines)} engine services; the stack needs two in one group")
    ini_group = ini_get(ini_text, "kafka", "group") or "neuralops"
    groups, states, dsns = {}, {}, {}
    for name, svc in engines.items():
        env = env_of(svc)
        groups[name] = env.get("NEURALOPS_KAFKA_GROUP", ini_group)
        states[name] = mounted_at(svc, ENGINE_DATA)
        dsns[name] = env.get("NEURALOPS_SINKS_POSTGRES_DSN",
                             ini_get(ini_text, "sinks", "postgres_dsn"))
        if mounted_at(svc, "/etc/neuralops/neuralops.ini") is None:
            problems.append(f"{name}: no config mounted at /etc/neuralops/neuralops.ini")
        deps = svc.get("depends_on") or {}
        init = [d for d in deps if "init" in d]
        if not init or (isinstance(deps, dict) and deps[init[0]].get("condition") !=
                        "service_completed_successfully"):
            problems.append(f"{name}: does not wait for the topics to be made (kafka-init)")
    if len(set(groups.values())) > 1:
        problems.append(f"engines in different consumer groups: {groups}")
    for name, vol in states.items():
        if vol is None:
            problems.append(f"{name}: no volume at {ENGINE_DATA}")
        elif vol not in volumes:
            problems.append(f"{name}: {ENGINE_DATA} is {vol}, not a named volume of the file")
    if len(set(v for v in states.values() if v)) < len(states):
        problems.append(f"engines share a state volume: {states}")
    if len(set(dsns.values())) != 1 or not all(dsns.values()) or \
            "host=postgres" not in next(iter(dsns.values()), ""):
        problems.append(f"engines do not share the PostgreSQL service: {dsns}")
    # topics made before the engines start: every topic the config names
    init_text = json.dumps([s for n, s in services.items() if "init" in n])
    topics = [ini_get(ini_text, "kafka", "topic"), ini_get(ini_text, "kafka", "dlq_topic")]
    sink_topic = ini_get(ini_text, "sinks", "kafka_topic")
    if sink_topic:
        topics += [sink_topic, sink_topic + ".service"]
    for t in topics:
        if t and t + ":" not in init_text:
            problems.append(f"topic {t} is not made by the init service")
    # Prometheus scrapes every engine at the API's port
    port = (ini_get(ini_text, "api", "listen") or "127.0.0.1:8080").rsplit(":", 1)[1]
    targets = set()
    for job in prom_cfg.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            targets.update(sc.get("targets") or [])
    for name, svc in engines.items():
        host = svc.get("hostname", name)
        if f"{host}:{port}" not in targets and f"{name}:{port}" not in targets:
            problems.append(f"Prometheus does not scrape {name} at port {port}")
    host = (ini_get(ini_text, "api", "listen") or "127.0.0.1:8080").rsplit(":", 1)[0]
    if host.startswith("127.") or host in ("localhost", "[::1]"):
        problems.append("api.listen is loopback: nothing outside the container reaches it")
    return problems


def check_compose(src, binary):
    d = os.path.join(src, "deploy")
    compose = load_yaml_docs(os.path.join(d, "compose.yaml"))[0]
    ini_text = open(os.path.join(d, "compose", "neuralops.ini"), encoding="utf-8").read()
    prom = load_yaml_docs(os.path.join(d, "compose", "prometheus.yml"))[0]
    problems = check_compose_doc(compose, ini_text, prom)
    names = set()
    for svc in engine_services(compose).values():
        names.update(k for k in env_of(svc) if k.startswith("NEURALOPS_"))
    problems += check_engine_config(binary, ini_text, sorted(names), "compose/neuralops.ini")
    # the configs mounted into Prometheus and Alertmanager, by their own tools
    with tempfile.TemporaryDirectory() as t:
        cfg = copy.deepcopy(prom)
        cfg["rule_files"] = [os.path.join(d, "prometheus", "neuralops-rules.yml")]
        with open(os.path.join(t, "prometheus.yml"), "w") as f:
            yaml.safe_dump(cfg, f)
        r = run(["promtool", "check", "config", os.path.join(t, "prometheus.yml")])
        if r.returncode != 0:
            problems.append("promtool check config: " + (r.stdout + r.stderr).strip())
    r = run(["amtool", "check-config", os.path.join(d, "compose", "alertmanager.yml")])
    if r.returncode != 0:
        problems.append("amtool check-config: " + (r.stdout + r.stderr).strip())
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        env = dict(os.environ, NEURALOPS_VECTOR_ACTOR_KEY="0" * 64, POSTGRES_PASSWORD="x")
        r = run(["docker", "compose", "-f", os.path.join(d, "compose.yaml"), "config", "-q"],
                env=env)
        if r.returncode != 0:
            problems.append("docker compose config: " + r.stderr.strip())
        else:
            print("docker compose config: valid")
    else:
        skip("docker compose config: no compose plugin for the docker client here "
             "(the compose file's schema is not checked by Docker itself)")
    print(f"compose: {len(engine_services(compose))} engines checked")
    return problems


# ---- k8s -------------------------------------------------------------------------------------

def probe_path(c, kind):
    p = c.get(kind) or {}
    return (p.get("httpGet") or {}).get("path"), (p.get("httpGet") or {}).get("port")


def check_k8s_docs(docs, ini_text_of):
    """Structure of the parsed manifests; ini_text_of(configmap) gives the engine config."""
    problems = []
    kinds = {}
    for doc in docs:
        kinds.setdefault(doc.get("kind"), []).append(doc)
    for k in ("Service", "ConfigMap", "Secret", "PodDisruptionBudget"):
        if k not in kinds:
            problems.append(f"no {k}")
    workloads = kinds.get("StatefulSet", []) + kinds.get("Deployment", [])
    if len(workloads) != 1:
        return problems + [f"{len(workloads)} StatefulSet/Deployment, want one"]
    w = workloads[0]
    tpl = w["spec"]["template"]
    labels = tpl["metadata"].get("labels") or {}
    sel = w["spec"]["selector"].get("matchLabels") or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        problems.append("the workload's selector does not match its pod labels")
    containers = tpl["spec"]["containers"]
    c = next((c for c in containers if c["name"] == "neuralops"), None)
    if c is None:
        return problems + ["no container named neuralops"]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    for kind, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        path, port = probe_path(c, kind)
        if path != want:
            problems.append(f"{kind} is on {path}, not {want}")
        if port not in ports and port not in ports.values():
            problems.append(f"{kind} port {port} is not a container port")
    ann = tpl["metadata"].get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/path") != "/metrics":
        problems.append("no Prometheus scrape annotations on the pod template")
    elif int(ann.get("prometheus.io/port", 0)) not in ports.values():
        problems.append("prometheus.io/port is not a container port")
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(part) or {}):
                problems.append(f"no resources.{part}.{r}")
    for pdb in kinds.get("PodDisruptionBudget", []):
        ps = pdb["spec"]["selector"].get("matchLabels") or {}
        if not ps or any(labels.get(k) != v for k, v in ps.items()):
            problems.append("the PodDisruptionBudget selects no engine pod")
    for svc in kinds.get("Service", []):
        ss = svc["spec"].get("selector") or {}
        if not ss or any(labels.get(k) != v for k, v in ss.items()):
            problems.append(f"Service {svc['metadata']['name']} selects no engine pod")
    if w["kind"] == "StatefulSet":
        names = {s["metadata"]["name"] for s in kinds.get("Service", [])}
        if w["spec"].get("serviceName") not in names:
            problems.append("the StatefulSet's serviceName is not one of the Services")
        if not w["spec"].get("volumeClaimTemplates"):
            problems.append("the StatefulSet has no volumeClaimTemplates: no per-pod state")
    mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
    if ENGINE_DATA not in mounts:
        problems.append(f"nothing mounted at {ENGINE_DATA}")
    for s in kinds.get("Secret", []):
        for k, v in (s.get("stringData") or {}).items():
            v = str(v)
            if re.fullmatch(r"[0-9a-fA-F]{32,}", v) or (v and "REPLACE_ME" not in v and
                                                       v != "neuralops-change-me"):
                problems.append(f"Secret {s['metadata']['name']} {k} looks like a real value; "
                                "ship placeholders only")
    cms = kinds.get("ConfigMap", [])
    if cms:
        ini_text = ini_text_of(cms[0])
        if ini_text is None:
            problems.append("the ConfigMap has no neuralops.ini")
        else:
            workers = ini_get(ini_text, "pipeline", "workers")
            cpu = str((res.get("requests") or {}).get("cpu", ""))
            if workers and cpu and cpu.isdigit() and int(workers) > int(cpu):
                problems.append(f"pipeline.workers {workers} exceeds the CPU request {cpu}")
    return problems


def check_k8s(src, binary):
    d = os.path.join(src, "deploy", "k8s")
    docs = []
    for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        if os.path.basename(path) != "kustomization.yaml":
            docs += load_yaml_docs(path)
    problems = check_k8s_docs(docs, lambda cm: (cm.get("data") or {}).get("neuralops.ini"))
    cm = next(x for x in docs if x["kind"] == "ConfigMap")
    names = set()
    for s in docs:
        if s["kind"] == "Secret":
            names.update(k for k in (s.get("stringData") or {}) if k.startswith("NEURALOPS_"))
    problems += check_engine_config(binary, cm["data"]["neuralops.ini"], sorted(names),
                                    "k8s ConfigMap neuralops.ini")
    kubectl = shutil.which("kubectl")
    if not kubectl:
        skip("kubectl kustomize / apply --dry-run=client: kubectl is not installed")
        return problems
    r = run([kubectl, "kustomize", d])
    if r.returncode != 0:
        problems.append("kubectl kustomize: " + r.stderr.strip())
    else:
        got = sorted(x["kind"] for x in yaml.safe_load_all(r.stdout) if x)
        want = sorted(x["kind"] for x in docs)
        if got != want:
            problems.append(f"kubectl kustomize renders {got}, the files hold {want}")
        print("kubectl kustomize: " + ", ".join(got))
    if run([kubectl, "config", "current-context"]).returncode != 0:
        skip("kubectl apply --dry-run=client: no Kubernetes cluster configured (kubectl needs an "
             "API server even for a client-side dry run, to map kinds to resources)")
        return problems
    r = run([kubectl, "apply", "--dry-run=client", "-k", d], timeout=120)
    if r.returncode == 0:
        print("kubectl apply --dry-run=client: accepted")
    else:
        problems.append("kubectl apply --dry-run=client: " + r.stderr.strip())
    return problems


# ---- dockerfile ------------------------------------------------------------------------------

def dockerfile_stages(text):
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append({"from": rest.split()[0], "lines": []})
        elif stages:
            stages[-1]["lines"].append((word.upper(), rest.strip()))
    return stages


def needed_packages(binary):
    """The Debian packages that provide each NEEDED library of the binary."""
    out = run(["objdump", "-p", binary]).stdout
    needed = re.findall(r"NEEDED\s+(\S+)", out)
    ldd = run(["ldd", binary]).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    pkgs = {}
    for lib in needed:
        path = where.get(lib)
        if not path:
            continue
        owners = set()
        for p in (path, os.path.realpath(path)):
            r = run(["dpkg", "-S", p])
            if r.returncode == 0:
                owners.update(x.split(":")[0].strip() for x in r.stdout.split(": ")[0].split(","))
        pkgs[lib] = owners
    return pkgs


def runtime_packages(stages):
    """The packages the last stage's apt-get install lines name."""
    installed = set()
    for w, r in stages[-1]["lines"]:
        if w == "RUN" and "apt-get install" in r:
            seg = r.split("apt-get install", 1)[1].split("&&")[0]
            installed.update(x for x in seg.split() if not x.startswith("-"))
    return installed


def check_dockerfile_text(text, needed, ini_text):
    problems = []
    stages = dockerfile_stages(text)
    if len(stages) < 2:
        return [f"{len(stages)} stage(s); want a build stage and a runtime stage"]
    for s in stages:
        if not re.match(r"debian:(12|bookworm)", s["from"]):
            problems.append(f"stage FROM {s['from']} is not Debian 12")
    build, rt = stages[0]["lines"], stages[-1]["lines"]
    if not any(w == "RUN" and "install-deps.sh" in r for w, r in build):
        problems.append("the build stage does not run deploy/install-deps.sh")
    if not any(w == "RUN" and "Release" in r for w, r in build):
        problems.append("the build stage does not build Release")
    installed = runtime_packages(stages)
    for lib, owners in sorted(needed.items()):
        if re.match(r"lib(asan|ubsan|lsan|tsan)\.", lib):
            continue  # a sanitizer build's runtime (make test's second pass), not the image's
        if owners and not owners & installed and not owners & {"libc6", "libgcc-s1"}:
            problems.append(f"{lib} (from {', '.join(sorted(owners))}) is not installed in the "
                            "runtime stage")
    user = [r for w, r in rt if w == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage runs as root")
    if not any(w == "VOLUME" and ENGINE_DATA in r for w, r in rt):
        problems.append(f"no VOLUME {ENGINE_DATA}")
    port = (ini_get(ini_text, "api", "listen") or ":8080").rsplit(":", 1)[1]
    if not any(w == "EXPOSE" and port in r.split() for w, r in rt):
        problems.append(f"EXPOSE does not name the API port {port}")
    if not any(w == "HEALTHCHECK" and "/healthz" in r for w, r in rt):
        problems.append("no HEALTHCHECK on /healthz")
    ep = [r for w, r in rt if w == "ENTRYPOINT"]
    if not ep or not re.search(r'"serve",\s*"-c",\s*"/etc/neuralops/neuralops.ini"', ep[-1]):
        problems.append("ENTRYPOINT is not `neuralops serve -c /etc/neuralops/neuralops.ini`")
    return problems


def check_dockerfile(src, binary):
    text = open(os.path.join(src, "deploy", "Dockerfile"), encoding="utf-8").read()
    ini_text = open(os.path.join(src, "deploy", "compose", "neuralops.ini"),
                    encoding="utf-8").read()
    needed = needed_packages(binary)
    print("runtime libraries: " + ", ".join(f"{k} ({'/'.join(sorted(v))})"
                                            for k, v in sorted(needed.items())))
    problems = check_dockerfile_text(text, needed, ini_text)
    if len(needed) < 5:
        problems.append(f"only {len(needed)} libraries mapped to packages: the check is blind")
    ign = open(os.path.join(src, ".dockerignore"), encoding="utf-8").read().split()
    for want in ("build", "neuralops-data", ".git"):
        if want not in ign:
            problems.append(f".dockerignore does not exclude {want}")
    for m in re.finditer(r"^COPY\s+((?:--\S+\s+)*)(\S+)\s", text, re.M):
        if "--from" in m.group(1) or m.group(2) == ".":
            continue
        if not os.path.exists(os.path.join(src, m.group(2))):
            problems.append(f"COPY {m.group(2)}: no such file in the tree")
    # the runtime stage's packages exist in Debian 12 (this machine's package index)
    if glob.glob("/var/lib/apt/lists/*bookworm*Packages*"):
        pkgs = sorted(runtime_packages(dockerfile_stages(text)))
        for pkg in pkgs:
            if run(["apt-cache", "show", "--no-all-versions", pkg]).returncode != 0:
                problems.append(f"runtime package {pkg} is not in Debian 12's package index")
        print(f"{len(pkgs)} runtime packages found in the Debian 12 package index")
    else:
        skip("runtime package names: no Debian 12 package index here (apt-get update)")
    if shutil.which("docker") and run(["docker", "info"], timeout=30).returncode == 0:
        r = run(["docker", "build", "-f", os.path.join(src, "deploy", "Dockerfile"), "-t",
                 "neuralops:test", src], timeout=3600)
        if r.returncode != 0:
            problems.append("docker build: " + r.stderr.strip()[-2000:])
    else:
        skip("docker build: no container runtime daemon answers here (docker info fails), and "
             "no registry is reachable to pull debian:12")
    return problems


# ---- metrics ---------------------------------------------------------------------------------

def expressions(src):
    exprs = []
    rules = load_yaml_docs(os.path.join(src, "deploy", "prometheus", "neuralops-rules.yml"))[0]
    for g in rules["groups"]:
        for r in g["rules"]:
            exprs.append((f"rule {r.get('alert') or r.get('record')}", r["expr"]))
    dash = json.load(open(os.path.join(src, "deploy", "grafana", "neuralops.json")))
    for p in dash["panels"]:
        for t in p.get("targets") or []:
            exprs.append((f"panel {p['title']!r}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            exprs.append((f"variable {v['name']}", q.get("query", "")))
    return exprs, rules, dash


def check_dashboard_shape(dash, rules):
    problems = []
    names = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    if "datasource" not in names:
        problems.append("the dashboard has no datasource variable")
    graphs = [p for p in dash["panels"] if p["type"] != "row"]
    if len(graphs) < 10:
        problems.append(f"{len(graphs)} panels")
    for p in graphs:
        if not p.get("targets"):
            problems.append(f"panel {p['title']!r} has no query")
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"panel {p['title']!r} is not on the datasource variable")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat")
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                if (r.get("labels") or {}).get("severity") not in ("info", "warning", "critical"):
                    problems.append(f"alert {r['alert']} has no severity")
                if not (r.get("annotations") or {}).get("summary"):
                    problems.append(f"alert {r['alert']} has no summary")
    text = json.dumps(rules)
    for want in ("neuralops_consumer_lag_messages", "neuralops_dlq_messages_total",
                 "neuralops_sink_flush_failures_total", "neuralops_consumer_paused",
                 "neuralops_automation_total", "neuralops_orchestration_refusals_total",
                 "neuralops_kafka_commit_failures_total"):
        if want not in text:
            problems.append(f"no alert on {want}")
    return problems


def check_names(exprs, exposed):
    problems = []
    for where, e in exprs:
        names = METRIC_RE.findall(e)
        if not names and where.startswith(("rule", "panel")) and "up{" not in e:
            problems.append(f"{where}: no engine metric in {e!r}")
        for n in names:
            if n not in exposed and n not in DOCUMENTED_PROCESS_METRICS:
                problems.append(f"{where}: {n} is not in the engine's /metrics")
    return problems


def scrape_demo(binary):
    """/metrics of a running `neuralops demo` (in-process Kafka, the whole pipeline)."""
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEURALOPS_")}
        env.update(HOME=d, XDG_CONFIG_HOME=os.path.join(d, "cfg"))
        err = open(os.path.join(d, "demo.err"), "w+")
        p = subprocess.Popen([binary, "demo", "--seconds", "600", "--series", "200", "--rate",
                              "20000", "--listen", "127.0.0.1:0", "--data-dir",
                              os.path.join(d, "data"), "--index", os.path.join(d, "index")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             env=env, cwd=d, start_new_session=True)
        try:
            deadline, port, text = time.time() + 240, None, ""
            while time.time() < deadline and p.poll() is None:
                if port is None:
                    err.seek(0)
                    m = re.search(r"API listening on \S+ \(port (\d+)\)", err.read())
                    port = m and m.group(1)
                if port:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                    timeout=10) as r:
                            text = r.read().decode()
                    except OSError:
                        text = ""
                    # the pipeline's families are there once it runs
                    if "neuralops_consumer_lag_messages" in text:
                        return text
                time.sleep(0.5)
            err.seek(0)
            raise RuntimeError(f"no /metrics from the demo (exit {p.poll()}): "
                               + err.read()[-2000:])
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


def check_metrics(src, binary):
    exprs, rules, dash = expressions(src)
    text = scrape_demo(binary)
    exposed = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    exposed |= set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    print(f"{len(exposed)} metric names exposed by the engine; {len(exprs)} expressions checked")
    return check_names(exprs, exposed) + check_dashboard_shape(dash, rules)

# ---- selftest --------------------------------------------------------------------------------

def check_selftest(src, binary):
    """Every checker must refuse a broken copy of the real files."""
    d = os.path.join(src, "deploy")
    problems = []
    compose = load_yaml_docs(os.path.join(d, "compose.yaml"))[0]
    ini_text = open(os.path.join(d, "compose", "neuralops.ini"), encoding="utf-8").read()
    prom = load_yaml_docs(os.path.join(d, "compose", "prometheus.yml"))[0]
    engines = sorted(engine_services(compose))

    def expect(what, found):
        if not found:
            problems.append(f"selftest: the checker accepted {what}")
        else:
            print(f"selftest: {what} refused ({found[0]})")

    if check_compose_doc(compose, ini_text, prom):
        problems.append("selftest: the real compose file does not pass")
    c = copy.deepcopy(compose)
    c["services"][engines[1]]["environment"]["NEURALOPS_KAFKA_GROUP"] = "other"
    expect("engines in two groups", check_compose_doc(c, ini_text, prom))
    c = copy.deepcopy(compose)
    c["services"][engines[1]]["volumes"] = list(c["services"][engines[0]]["volumes"])
    expect("engines on one state volume", check_compose_doc(c, ini_text, prom))
    c = copy.deepcopy(compose)
    del c["services"][engines[1]]
    expect("one engine", check_compose_doc(c, ini_text, prom))
    p = copy.deepcopy(prom)
    p["scrape_configs"][0]["static_configs"][0]["targets"] = p["scrape_configs"][0][
        "static_configs"][0]["targets"][:1]
    expect("Prometheus scraping one engine of two", check_compose_doc(compose, ini_text, p))
    expect("an API on loopback only",
           check_compose_doc(compose, ini_text.replace("0.0.0.0:8080", "127.0.0.1:8080"), prom))
    expect("a config key the engine does not know",
           check_engine_config(binary, ini_text + "\n[kafka]\nbrokerz = x\n", [], "selftest")
           if "[kafka]" not in ini_text else
           check_engine_config(binary, ini_text.replace("[kafka]\n", "[kafka]\nbrokerz = x\n"),
                               [], "selftest"))
    expect("an environment variable that is no setting",
           check_engine_config(binary, ini_text, ["NEURALOPS_KAFKA_GROUPS"], "selftest"))

    docs = []
    for path in sorted(glob.glob(os.path.join(d, "k8s", "*.yaml"))):
        if os.path.basename(path) != "kustomization.yaml":
            docs += load_yaml_docs(path)
    ini_of = lambda cm: (cm.get("data") or {}).get("neuralops.ini")
    if check_k8s_docs(docs, ini_of):
        problems.append("selftest: the real manifests do not pass")
    wl = next(i for i, x in enumerate(docs) if x["kind"] in ("StatefulSet", "Deployment"))
    k = copy.deepcopy(docs)
    k[wl]["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    expect("no readiness probe", check_k8s_docs(k, ini_of))
    k = copy.deepcopy(docs)
    k[wl]["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] = "/"
    expect("liveness on /", check_k8s_docs(k, ini_of))
    k = [x for x in copy.deepcopy(docs) if x["kind"] != "PodDisruptionBudget"]
    expect("no PodDisruptionBudget", check_k8s_docs(k, ini_of))
    k = copy.deepcopy(docs)
    sec = next(x for x in k if x["kind"] == "Secret")
    sec["stringData"][next(iter(sec["stringData"]))] = "ab" * 32
    expect("a real-looking key in a Secret", check_k8s_docs(k, ini_of))

    text = open(os.path.join(d, "Dockerfile"), encoding="utf-8").read()
    needed = needed_packages(binary)
    if check_dockerfile_text(text, needed, ini_text):
        problems.append("selftest: the real Dockerfile does not pass")
    expect("a runtime stage without librdkafka1",
           check_dockerfile_text(text.replace("librdkafka1 ", ""), needed, ini_text))
    expect("a root runtime stage",
           check_dockerfile_text(text.replace("USER neuralops:neuralops", "USER root"), needed,
                                 ini_text))
    expect("a runtime stage on another distribution",
           check_dockerfile_text(text.replace("debian:12-slim", "alpine:3.19"), needed, ini_text))

    exprs, rules, dash = expressions(src)
    exposed = {n for _, e in exprs for n in METRIC_RE.findall(e)}
    expect("a dashboard query on a metric the engine does not have",
           check_names(exprs + [("panel 'x'", "rate(neuralops_no_such_total[5m])")], exposed))
    bad = copy.deepcopy(rules)
    bad["groups"][0]["rules"] = [r for r in bad["groups"][0]["rules"]
                                 if "lag" not in r["expr"]]
    expect("rules without a lag alert", check_dashboard_shape(dash, bad))
    return problems


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    src, binary, what = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    checks = {"yaml": lambda: check_yaml(src), "compose": lambda: check_compose(src, binary),
              "k8s": lambda: check_k8s(src, binary),
              "dockerfile": lambda: check_dockerfile(src, binary),
              "metrics": lambda: check_metrics(src, binary),
              "selftest": lambda: check_selftest(src, binary),
              "topology": lambda: __import__("topology").check_topology(src, binary)}
    if what not in checks:
        print(__doc__)
        return 2
    problems = checks[what]()
    for p in problems:
        print("PROBLEM: " + p)
    print(f"{what}: {'FAILED' if problems else 'ok'} ({len(problems)} problem(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
