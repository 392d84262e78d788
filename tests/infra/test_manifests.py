"""The production-shape files under infra/ agree with the code they start.

Static checks, no network and no cluster: the compose stack is wired (health checks, dependencies, volumes);
every `aoi ...` call in compose, the Kubernetes manifests, the Prefect base job template and the Dockerfile is a
real command with real options; every AOI_* name there is a real setting and .env.example lists them all with
their true defaults; the Kubernetes objects are well formed and refer to each other by the right names. Where
`kubectl` or `docker compose` exist, their own client-side validation runs too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import typer.main
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from aoi.settings import Settings
from cli import app

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
COMPOSE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
BASE_JOB_TEMPLATE = K8S / "prefect" / "base-job-template.json"
DOCKERFILE = INFRA / "Dockerfile"
README = INFRA / "README.md"

SECRET = "aoi-secrets"  # created by hand (infra/README.md), never committed
SECRET_KEYS = {"api-key", "db-url", "prefect-db-url", "prefect-auth-string", "auth_token"}
CONFIGMAP = "aoi-config"
HOME_VOLUME = "aoi-home"  # compose volume and Kubernetes PVC of AOI_HOME

AOI_NAME = re.compile(r"\bAOI_[A-Z0-9_]+")
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# ---------------------------------------------------------------------------------------------------------------
# Settings: environment names <-> fields of aoi.settings.Settings


def setting_paths(model: type[BaseModel] = Settings, prefix: str = "AOI_", path: tuple = ()) -> dict[str, tuple]:
    """Every leaf setting as {ENV_NAME: field path}, nested groups joined with __ (as pydantic-settings reads them)."""
    out = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out |= setting_paths(annotation, f"{prefix}{name.upper()}__", (*path, name))
        else:
            out[f"{prefix}{name.upper()}"] = (*path, name)
    return out


def unknown_settings(names) -> list[str]:
    """The names that are neither a setting nor a group prefix written as such (``AOI_GATE__``)."""
    known = setting_paths()
    groups = {name[: name.rindex("__") + 2] for name in known if "__" in name}
    return sorted(name for name in set(names) if name not in known and name not in groups)


def aoi_names(text: str) -> set[str]:
    # A trailing single underscore is punctuation ("AOI_HOME_"), a trailing double one a group prefix.
    return {name if name.endswith("__") else name.rstrip("_") for name in AOI_NAME.findall(text)}


def value_at(settings: Settings, path: tuple):
    for part in path:
        settings = getattr(settings, part)
    return settings


def clear_aoi_env(monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("AOI_")]:
        monkeypatch.delenv(name)


def dotenv(path: Path) -> list[tuple[str, str, bool]]:
    """(name, value, commented) of every NAME=value line, commented or not; quotes around a value removed."""
    rows = []
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            value = match["value"]
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            rows.append((match["name"], value, bool(match["comment"])))
    return rows


def active_env(path: Path) -> dict[str, str]:
    return {name: value for name, value, commented in dotenv(path) if not commented}


# ---------------------------------------------------------------------------------------------------------------
# Commands: `aoi ...` calls in command lines <-> the typer app

SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}


def aoi_invocations(command) -> list[list[str]]:
    """Every `aoi ...` call in a command: an exec-form list or a shell string; nested `sh -c` scripts included."""
    if command is None:
        return []
    text = shlex.join(command) if isinstance(command, list) else str(command)
    text = text.replace("\\\n", " ").replace("\n", " ; ")  # a newline ends a shell command
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    calls: list[list[str]] = []
    current: list[str] | None = None
    for token in lexer:
        if token in SEPARATORS:
            current = None
        elif re.search(r"\s", token):  # a quoted script (sh -c "..."): look inside
            calls += aoi_invocations(token)
            current = None
        elif current is not None:
            current.append(token)
        elif token.rsplit("/", 1)[-1] == "aoi":
            current = [token]
            calls.append(current)
    return calls


def cli_problems(argv: list[str]) -> list[str]:
    """Why ``argv`` (``aoi group sub --option ...``) would not parse: an unknown command or option."""
    command = typer.main.get_command(app)
    words, path = list(argv[1:]), ["aoi"]
    while hasattr(command, "commands"):  # a group (typer vendors its own click: no isinstance)
        if words[:1] == ["--help"]:
            return []
        if not words or words[0].startswith("-"):
            return [f"`{shlex.join(argv)}` names no command"]
        name = words.pop(0)
        if name not in command.commands:
            return [f"`{shlex.join(argv)}`: no command `{' '.join(path)} {name}`"]
        command, path = command.commands[name], [*path, name]
    options = {"--help"} | {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return [
        f"`{shlex.join(argv)}`: `{' '.join(path)}` has no option {word}"
        for word in words
        if word.startswith("-") and word.split("=", 1)[0] not in options
    ]


def containers(node):
    """Every container and init container anywhere under ``node`` (pod specs, templates, CRDs)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            yield from containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers(item)


def container_command(container: dict) -> list[str]:
    """command + args as the container runs them; a templated string (Prefect's "{{ command }}") kept whole."""
    parts = []
    for key in ("command", "args"):
        value = container.get(key)
        parts += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return parts


def find_key(node, key: str):
    """Every value of ``key`` at any depth."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key:
                yield value
            yield from find_key(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from find_key(item, key)


# ---------------------------------------------------------------------------------------------------------------
# Loading the files


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def k8s_objects() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def objects_of(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_objects() if doc.get("kind") == kind]


def base_job_template() -> dict:
    return json.loads(BASE_JOB_TEMPLATE.read_text())


def configmap() -> dict[str, str]:
    (config,) = [doc for doc in objects_of("ConfigMap") if doc["metadata"]["name"] == CONFIGMAP]
    return config["data"]


def compose_commands() -> list:
    out = []
    for service in compose()["services"].values():
        out += [service.get("command"), service.get("entrypoint"), (service.get("healthcheck") or {}).get("test")]
    return [c for c in out if c]


def k8s_commands() -> list:
    out = [container_command(c) for _, doc in k8s_objects() for c in containers(doc)]
    out += [doc["spec"]["entrypoint"] for doc in objects_of("RayJob")]
    out += [container_command(c) for c in containers(base_job_template())]
    return out


def dockerfile_instruction(name: str) -> list[str] | None:
    """The exec-form (JSON) argument list of the last CMD or ENTRYPOINT of the Dockerfile."""
    found = re.findall(rf"^{name}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return json.loads(found[-1]) if found else None


# ---------------------------------------------------------------------------------------------------------------
# Compose


def compose_problems(stack: dict) -> list[str]:
    """Health checks on long-running services, dependencies on defined services, declared named volumes."""
    services, declared = stack.get("services", {}), set(stack.get("volumes") or {})
    problems = []
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        if not one_shot and not has_healthcheck(service):
            problems.append(f"service {name} has no healthcheck (and is not a one-shot restart: 'no' job)")
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):  # short form: started, not healthy
            depends = {dependency: {} for dependency in depends}
        for dependency, condition in depends.items():
            if dependency not in services:
                problems.append(f"service {name} depends on undefined service {dependency}")
            elif condition.get("condition") == "service_healthy" and not has_healthcheck(services[dependency]):
                problems.append(f"service {name} waits for the health of {dependency}, which has no healthcheck")
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if volume_is_named(volume, source) and source not in declared:
                problems.append(f"service {name} uses undeclared volume {source}")
    return problems


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable")


def volume_is_named(volume, source: str | None) -> bool:
    if isinstance(volume, dict):
        return volume.get("type", "volume") == "volume" and bool(source)
    return ":" in volume and not source.startswith((".", "/", "~", "$"))


def home_mount_problems(stack: dict, home: str) -> list[str]:
    """Every service that reads the AOI settings (env_file) mounts the AOI_HOME volume at AOI_HOME."""
    problems = []
    for name, service in stack["services"].items():
        if "env_file" in service and f"{HOME_VOLUME}:{home}" not in (service.get("volumes") or []):
            problems.append(f"service {name} reads the settings but does not mount {HOME_VOLUME} at {home}")
    return problems


def test_compose_parses_and_is_wired():
    stack = compose()
    assert stack["services"], "no services"
    assert compose_problems(stack) == []
    expected = {"postgres", "redis", "prefect-server", "prefect-worker", "ray-head", "ray-worker", "classifier"}
    assert expected <= set(stack["services"])


def test_compose_problems_are_caught():
    broken = {
        "services": {
            "a": {"depends_on": {"ghost": {"condition": "service_healthy"}}, "volumes": ["undeclared:/x", "./bind:/y"]}
        },
        "volumes": {},
    }
    problems = compose_problems(broken)
    assert any("no healthcheck" in p for p in problems)
    assert any("undefined service ghost" in p for p in problems)
    assert any("undeclared volume undeclared" in p for p in problems)
    assert not any("bind" in p for p in problems)


def test_every_aoi_container_mounts_aoi_home_at_aoi_home():
    assert home_mount_problems(compose(), active_env(ENV_EXAMPLE)["AOI_HOME"]) == []
    classifier = compose()["services"]["classifier"]
    assert classifier["image"] == "aoi-classifier:latest", "the Bento image `bentoml containerize` tags"


# ---------------------------------------------------------------------------------------------------------------
# Commands


def all_invocations() -> list[list[str]]:
    docker = [dockerfile_instruction("CMD"), dockerfile_instruction("ENTRYPOINT")]
    commands = compose_commands() + k8s_commands() + docker
    return [call for command in commands for call in aoi_invocations(command)]


def test_every_aoi_call_is_a_real_command_with_real_options():
    calls = all_invocations()
    # The extraction must have found the calls the stack relies on, or this test would pass on nothing.
    assert {"worker", "deploy", "train", "db"} <= {call[1] for call in calls if len(call) > 1}
    problems = [p for call in calls for p in cli_problems(call)]
    assert problems == []


def test_command_checker_flags_unknown_commands_and_options():
    assert aoi_invocations(["sh", "-c", "ray start --address=x && exec aoi worker --background"]) == [
        ["aoi", "worker", "--background"]
    ]
    assert aoi_invocations("aoi db upgrade\naoi deploy") == [["aoi", "db", "upgrade"], ["aoi", "deploy"]]
    assert cli_problems(["aoi", "train", "--dataset", "d", "--workers", "2", "--gpu", "--json"]) == []
    assert cli_problems(["aoi", "trian"])
    assert cli_problems(["aoi", "train", "--gpus"])
    assert cli_problems(["aoi", "db", "downgrade"])
    assert cli_problems(["aoi", "db"])


def test_dockerfile_runs_an_installed_executable_and_installs_the_project():
    text = DOCKERFILE.read_text()
    argv = dockerfile_instruction("ENTRYPOINT") or dockerfile_instruction("CMD")
    assert argv and argv[0] in {"aoi", "prefect", "ray"}, f"ENTRYPOINT/CMD runs {argv}"
    assert re.search(r"pip install[^\n]*\s(-e\s+)?\.(\s|$)", text), "the project itself is not installed"
    assert "ARG TORCH_INDEX_URL" in text, "the CPU/CUDA torch switch is gone"
    for pin in ("torch==", "torchvision=="):  # the same pins as pyproject.toml
        wanted = re.search(rf'"{re.escape(pin)}([^"]+)"', (REPO / "pyproject.toml").read_text())[1]
        assert f"{pin}{wanted}" in text, f"Dockerfile does not install {pin}{wanted}"


# ---------------------------------------------------------------------------------------------------------------
# Settings


def infra_texts() -> dict[Path, str]:
    files = [COMPOSE, ENV_EXAMPLE, README, *manifest_files(), *kustomizations(), BASE_JOB_TEMPLATE]
    return {path: path.read_text() for path in files}


def test_every_aoi_variable_named_in_infra_is_a_setting():
    problems = {str(path.relative_to(REPO)): unknown_settings(aoi_names(text)) for path, text in infra_texts().items()}
    assert {path: names for path, names in problems.items() if names} == {}


def test_unknown_setting_names_are_caught():
    assert unknown_settings(aoi_names("AOI_HOME=/x AOI_SERVING__PORT=1 AOI_NOPE=1 AOI_SERVING__NOPE=2")) == [
        "AOI_NOPE",
        "AOI_SERVING__NOPE",
    ]
    assert unknown_settings(["AOI_SERVING"]) == ["AOI_SERVING"]  # a group is not a setting
    assert unknown_settings(aoi_names("the AOI_GATE__ group, AOI_GATE_ and AOI_NOPE__")) == ["AOI_GATE", "AOI_NOPE__"]


def test_env_example_lists_every_setting():
    listed = {name for name, _, _ in dotenv(ENV_EXAMPLE)}
    missing = sorted(set(setting_paths()) - listed)
    assert missing == [], f"infra/.env.example has no line for {missing}"
    assert {
        "PREFECT_API_URL",
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "RAY_ADDRESS",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
    } <= listed


def test_env_example_values_are_valid_and_commented_ones_are_the_defaults(monkeypatch):
    clear_aoi_env(monkeypatch)
    default = Settings()
    paths = setting_paths()
    wrong = []
    for name, value, commented in dotenv(ENV_EXAMPLE):
        if name.startswith("AOI_") and commented and value:
            with monkeypatch.context() as one:
                one.setenv(name, value)
                if value_at(Settings(), paths[name]) != value_at(default, paths[name]):
                    wrong.append(f"{name}={value}")
    assert wrong == [], f"commented values that are not the defaults: {wrong}"
    for name, value in active_env(ENV_EXAMPLE).items():
        if name.startswith("AOI_"):
            monkeypatch.setenv(name, value)
    Settings()  # the stack's values validate


def test_env_example_points_at_compose_services():
    env, services = active_env(ENV_EXAMPLE), set(compose()["services"])
    catalog = make_url(env["AOI_DB_URL"])
    assert (catalog.username, catalog.password, catalog.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    prefect_db = make_url(env["PREFECT_API_DATABASE_CONNECTION_URL"])
    assert prefect_db.drivername == "postgresql+asyncpg"
    assert (prefect_db.username, prefect_db.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert re.search(rf"CREATE DATABASE {prefect_db.database}\b", (INFRA / "postgres-init.sql").read_text())
    hosts = {
        "AOI_DB_URL": catalog.host,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.host,
        "PREFECT_API_URL": re.match(r"https?://([^:/]+)", env["PREFECT_API_URL"])[1],
        "AOI_FEAST_ONLINE": urlsplit(env["AOI_FEAST_ONLINE"]).hostname,
        "RAY_ADDRESS": env["RAY_ADDRESS"].split(":")[0],
    }
    assert {name: host for name, host in hosts.items() if host not in services} == {}
    assert env["PREFECT_API_URL"].endswith(":4200/api")
    assert unquote(urlsplit(env["AOI_FEAST_ONLINE"]).password or "") == env["REDIS_PASSWORD"]
    assert "${REDIS_PASSWORD:?" in " ".join(compose()["services"]["redis"]["command"])


def test_the_stack_publishes_only_on_loopback_and_needs_a_real_api_key():
    stack = compose()
    published = {name: port for name, service in stack["services"].items() for port in service.get("ports") or []}
    assert published and {n: p for n, p in published.items() if not str(p).startswith("127.0.0.1:")} == {}
    assert published["classifier"] == "127.0.0.1:3000:3000"
    # No placeholder key anyone could read here: empty in the example, and compose refuses to start without one.
    assert "AOI_API_KEY" not in active_env(ENV_EXAMPLE)  # no placeholder anyone could read; empty is refused too
    assert stack["services"]["classifier"]["environment"]["AOI_API_KEY"].startswith("${AOI_API_KEY:?")


def test_configmap_settings_validate(monkeypatch):
    clear_aoi_env(monkeypatch)
    data = configmap()
    for name, value in data.items():
        if name.startswith("AOI_"):
            monkeypatch.setenv(name, value)
    assert str(Settings().home) == data["AOI_HOME"]


# ---------------------------------------------------------------------------------------------------------------
# BentoML service


def test_bentofile_names_an_existing_service_class():
    bentofile = yaml.safe_load((REPO / "serving" / "bentofile.yaml").read_text())
    module, cls = bentofile["service"].split(":")
    source = REPO / (module.replace(".", "/") + ".py")
    assert source.exists(), f"{bentofile['service']}: no {source.relative_to(REPO)}"
    assert re.search(rf"^class {cls}\b", source.read_text(), flags=re.MULTILINE)
    assert bentofile["name"] == "aoi-classifier", "compose and k8s use the image aoi-classifier:latest"


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes


def test_k8s_documents_are_well_formed_and_all_listed():
    objects = k8s_objects()
    assert objects
    for path, doc in objects:
        where = f"{path.relative_to(REPO)}: {doc.get('kind')}"
        assert doc.get("apiVersion") and doc.get("kind"), where
        assert doc.get("metadata", {}).get("name"), f"{where} has no metadata.name"
    listed = set()
    for kustomization in kustomizations():
        spec = yaml.safe_load(kustomization.read_text())
        for resource in spec.get("resources", []):
            target = (kustomization.parent / resource).resolve()
            assert target.exists(), f"{kustomization.relative_to(REPO)} lists missing {resource}"
            listed.add(target)
        for generator in spec.get("configMapGenerator", []):
            for entry in generator.get("files", []):
                assert (kustomization.parent / entry.split("=")[-1]).exists(), f"missing {entry}"
    assert [str(p.relative_to(REPO)) for p in manifest_files() if p.resolve() not in listed] == []


def test_no_secret_is_committed_and_secret_refs_use_the_documented_secret():
    assert objects_of("Secret") == [], "the Secret is created by hand, never committed"
    refs = [ref for _, doc in k8s_objects() for ref in find_key(doc, "secretKeyRef")]
    refs += list(find_key(base_job_template(), "secretKeyRef"))
    assert refs
    assert {ref["name"] for ref in refs} == {SECRET}
    assert {ref["key"] for ref in refs} <= SECRET_KEYS
    readme = README.read_text()
    assert f"create secret generic {SECRET}" in readme
    assert {key for key in SECRET_KEYS if f"--from-literal={key}=" not in readme} == set()


def test_pods_that_read_the_settings_mount_aoi_home_at_aoi_home():
    home = configmap()["AOI_HOME"]
    (pvc,) = [p for p in objects_of("PersistentVolumeClaim") if p["metadata"]["name"] == HOME_VOLUME]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "pods on several nodes share AOI_HOME"
    pod_specs = [spec for _, doc in k8s_objects() for spec in find_key(doc, "spec") if "containers" in spec]
    pod_specs += [spec for spec in find_key(base_job_template(), "spec") if "containers" in spec]
    problems = []
    for spec in pod_specs:
        claims = {
            v["name"]
            for v in spec.get("volumes", [])
            if v.get("persistentVolumeClaim", {}).get("claimName") == HOME_VOLUME
        }
        for container in spec["containers"]:
            sources = container.get("envFrom", [])
            reads_settings = any(e.get("configMapRef", {}).get("name") == CONFIGMAP for e in sources)
            mounted = any(m["name"] in claims and m["mountPath"] == home for m in container.get("volumeMounts", []))
            if reads_settings and not mounted:
                problems.append(container["name"])
    assert problems == []


def test_raycluster_has_a_gpu_worker_group_and_the_rayjob_uses_it():
    (cluster,) = objects_of("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"

    def gpus(group: dict) -> bool:
        return any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in containers(group))

    gpu_groups = [group for group in cluster["spec"]["workerGroupSpecs"] if gpus(group)]
    assert gpu_groups, "no worker group limits nvidia.com/gpu"
    assert all(group["template"]["spec"].get("tolerations") for group in gpu_groups)
    (job,) = objects_of("RayJob")
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    (call,) = aoi_invocations(job["spec"]["entrypoint"])
    assert call[1] == "train" and "--gpu" in call and "--workers" in call


def test_hpa_targets_the_classifier_deployment():
    deployments = {d["metadata"]["name"] for d in objects_of("Deployment")}
    (hpa,) = objects_of("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] in deployments and target["name"] == "classifier"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    (classifier,) = [d for d in objects_of("Deployment") if d["metadata"]["name"] == "classifier"]
    (container,) = classifier["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"], "a CPU utilisation target needs a CPU request"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_services_select_deployment_pods():
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in objects_of("Deployment")]
    for deployment in objects_of("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    unmatched = [
        s["metadata"]["name"]
        for s in objects_of("Service")
        if not any(s["spec"]["selector"].items() <= labels.items() for labels in pod_labels)
    ]
    assert unmatched == []


def test_work_pool_names_agree():
    pool = configmap()["AOI_MONITORING__WORK_POOL"]
    named = []
    for command in k8s_commands():
        words = shlex.split(command) if isinstance(command, str) else [w for part in command for w in shlex.split(part)]
        named += [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--pool"]
        create = ["prefect", "work-pool", "create"]
        named += [words[i + 3] for i in range(len(words) - 3) if words[i : i + 3] == create]
    assert named and set(named) == {pool}, f"pools named {named}, settings say {pool}"
    assert "--type kubernetes" in " ".join(" ".join(c) if isinstance(c, list) else c for c in k8s_commands())


def test_base_job_template_has_prefects_shape():
    template = base_job_template()
    config, variables = template["job_configuration"], template["variables"]
    manifest = config["job_manifest"]
    assert manifest["kind"] == "Job" and manifest["apiVersion"] == "batch/v1"
    pod = manifest["spec"]["template"]["spec"]
    # What the kubernetes worker's validation insists on (any other value is "incompatible").
    assert (pod["restartPolicy"], pod["parallelism"], pod["completions"]) == ("Never", 1, 1)
    assert pod["containers"][0]["name"] == "prefect-job"
    used = set(PLACEHOLDER.findall(json.dumps(config)))
    assert used - set(variables["properties"]) == set(), "a placeholder without a variable renders empty"
    assert {"image", "namespace", "env", "command"} <= used
    # The server's own check on `prefect work-pool create`, and the rendering a worker does with the defaults.
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect.utilities.templating import apply_values

    validate_base_job_template(template)
    defaults = {name: spec["default"] for name, spec in variables["properties"].items() if "default" in spec}
    rendered = apply_values(config, {**defaults, "name": "retrain-gray"})
    container = rendered["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert container["image"] == defaults["image"]
    assert rendered["job_manifest"]["metadata"]["namespace"] == namespace, "jobs go where infra/k8s is applied"


# ---------------------------------------------------------------------------------------------------------------
# Tools' own validation, where they exist


def test_kustomize_builds():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    for kustomization in kustomizations():
        proc = subprocess.run(
            ["kubectl", "kustomize", str(kustomization.parent)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        kinds = {doc["kind"] for doc in yaml.safe_load_all(proc.stdout) if doc}
        assert kinds, f"{kustomization} builds nothing"


def test_docker_compose_config(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode:
        pytest.skip("docker compose is not available")
    # A copy, with .env.example as .env: the stack's env_file must exist for the config to resolve.
    for name in ("docker-compose.yml", "postgres-init.sql"):
        shutil.copy(INFRA / name, tmp_path / name)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    argv = [
        docker,
        "compose",
        "-f",
        str(tmp_path / "docker-compose.yml"),
        "--env-file",
        str(tmp_path / ".env"),
        "config",
        "-q",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "AOI_API_KEY" in proc.stderr, "the example has no key: the stack must refuse"
    text = ENV_EXAMPLE.read_text().replace("\nAOI_API_KEY=\n", "\nAOI_API_KEY=a-real-key-set-by-the-operator\n")
    (tmp_path / ".env").write_text(text)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
