"""The `docker` command line the sandbox puts on a build's PATH: parsing, dispatch, exit codes.

Only the sub-commands `buildspec.yml` may use (docs/CONTRACTS.md) plus `images`. Parsing follows the
Docker CLI (cobra): flags may come before or after positionals, `--flag=value`, `--flag value` and
`-tvalue` are all accepted, an unknown flag is `unknown flag: --x` with exit 125, a wrong number of
arguments is exit 1 with the usage. Nothing heavy is imported until a command needs it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .refs import BadReference, Reference, parse_reference
from .state import State

BANNER = (
    "ncf-tui sandbox builder: this `docker` is not Docker. No Docker engine answers here, so the sandbox "
    "checks the Dockerfile and build context, smoke-tests the image's server natively and registers the "
    "image in ECR with put_image."
)
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
PRIVILEGED_ENV = "NCF_SANDBOX_PRIVILEGED"


class UsageError(Exception):
    """A command line Docker's CLI refuses; carries Docker's message and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Spec:
    """A sub-command's flags (name -> takes a value), short aliases, positional count and usage."""

    name: str
    usage: str
    summary: str
    value_flags: frozenset[str] = frozenset()
    bool_flags: frozenset[str] = frozenset()
    aliases: dict[str, str] = field(default_factory=dict)
    min_args: int = 0
    max_args: int | None = None


SPECS = {
    "login": Spec(
        "login",
        "docker login [OPTIONS] [SERVER]",
        "Log in to a registry",
        frozenset({"username", "password"}),
        frozenset({"password-stdin"}),
        {"u": "username", "p": "password"},
        0,
        1,
    ),
    "build": Spec(
        "build",
        "docker buildx build [OPTIONS] PATH | URL | -",
        "Start a build",
        frozenset({"tag", "file", "label", "build-arg", "progress", "platform", "target"}),
        frozenset({"no-cache", "pull", "quiet", "rm", "force-rm"}),
        {"t": "tag", "f": "file", "q": "quiet"},
        1,
        1,
    ),
    "tag": Spec(
        "tag",
        "docker tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
        min_args=2,
        max_args=2,
    ),
    "push": Spec(
        "push",
        "docker push [OPTIONS] NAME[:TAG]",
        "Upload an image to a registry",
        bool_flags=frozenset({"quiet", "disable-content-trust"}),
        aliases={"q": "quiet"},
        min_args=1,
        max_args=1,
    ),
    "image inspect": Spec(
        "image inspect",
        "docker image inspect [OPTIONS] IMAGE [IMAGE...]",
        "Display detailed information on one or more images",
        value_flags=frozenset({"format"}),
        aliases={"f": "format"},
        min_args=1,
    ),
    "version": Spec(
        "version",
        "docker version [OPTIONS]",
        "Show the Docker version information",
        value_flags=frozenset({"format"}),
        aliases={"f": "format"},
        max_args=0,
    ),
    "images": Spec(
        "images",
        "docker images [OPTIONS] [REPOSITORY[:TAG]]",
        "List images",
        bool_flags=frozenset({"quiet", "all", "no-trunc"}),
        aliases={"q": "quiet", "a": "all"},
        max_args=1,
    ),
}
SPECS["image ls"] = SPECS["images"]
SPECS["inspect"] = SPECS["image inspect"]


def _see(spec: Spec) -> str:
    return f"See 'docker {spec.name} --help'."


def parse_args(spec: Spec, argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Flags (long name -> values, in order) and positionals; raises UsageError like the Docker CLI."""
    flags: dict[str, list[str]] = {}
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            positionals.extend(argv[i:])
            break
        if word in ("-h", "--help"):
            raise UsageError(f"Usage:  {spec.usage}\n\n{spec.summary}", 0)
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            display = f"--{name}"
        elif word.startswith("-") and len(word) > 1:
            short = word[1]
            name = spec.aliases.get(short, "")
            if not name:
                raise UsageError(f"unknown shorthand flag: '{short}' in {word}\n{_see(spec)}", 125)
            value, eq = word[2:], "=" if len(word) > 2 else ""
            display = f"'{short}' in -{short}"
        else:
            positionals.append(word)
            continue
        if name in spec.value_flags:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {display}\n{_see(spec)}", 125)
                value = argv[i]
                i += 1
            flags.setdefault(name, []).append(value)
        elif name in spec.bool_flags:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise UsageError(
                    f'invalid argument "{value}" for "--{name}" flag: strconv.ParseBool: parsing "{value}": '
                    f"invalid syntax\n{_see(spec)}",
                    125,
                )
            flags.setdefault(name, []).append(value if eq else "true")
        else:
            raise UsageError(f"unknown flag: --{name}\n{_see(spec)}", 125)
    count = len(positionals)
    if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
        if spec.max_args == spec.min_args:
            need = f"exactly {spec.min_args} argument{'s' if spec.min_args != 1 else ''}"
        elif spec.max_args is None:
            need = f"at least {spec.min_args} argument{'s' if spec.min_args != 1 else ''}"
        else:
            need = f"at most {spec.max_args} argument{'s' if spec.max_args != 1 else ''}"
        raise UsageError(
            f'"docker {spec.name}" requires {need}.\n{_see(spec)}\n\nUsage:  {spec.usage}\n\n{spec.summary}',
            1,
        )
    return flags, positionals


def _reference(text: str, flag: str | None = None) -> Reference:
    try:
        return parse_reference(text)
    except BadReference as error:
        if flag:
            raise UsageError(f'invalid argument "{text}" for "{flag}" flag: {error}', 125) from None
        raise UsageError(f'Error parsing reference: "{text}" is not a valid repository/tag: {error}', 1) from None


def _key_values(values: list[str], flag: str, from_env: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{item}" for "{flag}" flag: invalid key/value', 125)
        if not eq and from_env:
            if key not in os.environ:
                continue  # Docker drops `--build-arg NAME` when NAME is not set
            value = os.environ[key]
        out[key] = value
    return out


# --- commands -----------------------------------------------------------------------------------------


def cmd_login(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    from .ecr import RegistryError, verify_login

    registry = args[0] if args else "https://index.docker.io/v1/"
    registry = registry.removeprefix("https://").removeprefix("http://").rstrip("/")
    username = (flags.get("username") or [""])[-1]
    if flags.get("password-stdin"):
        if flags.get("password"):
            raise UsageError("--password and --password-stdin are mutually exclusive", 1)
        if not username:
            raise UsageError("Must provide --username with --password-stdin", 1)
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = (flags.get("password") or [""])[-1]
        if password:
            err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not username or not password:
        err.write("Error: Cannot perform an interactive login from a non TTY device\n")
        return 1
    try:
        verify_login(registry, username, password)
    except RegistryError as error:
        err.write(f"{error}\n")
        return 1
    store.record_login(registry, username, password)
    err.write(f"sandbox: token checked with ECR GetAuthorizationToken; only its sha256 is kept in {store.root}\n")
    out.write("Login Succeeded\n")
    return 0


def cmd_build(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    from .build import BuildOptions, run_build

    if flags.get("target"):
        err.write("ERROR: the ncf-tui sandbox builder builds the last stage only (--target is not supported)\n")
        return 1
    tags = [_reference(t, "-t, --tag") for t in flags.get("tag", [])]
    options = BuildOptions(
        context=args[0],
        tags=tags,
        labels=_key_values(flags.get("label", []), "--label", from_env=False),
        build_args=_key_values(flags.get("build-arg", []), "--build-arg", from_env=True),
        dockerfile=flags["file"][-1] if flags.get("file") else None,
        quiet=bool(flags.get("quiet")),
    )
    if options.context == "-":
        err.write("ERROR: the ncf-tui sandbox builder needs a context directory (not stdin)\n")
        return 1
    store.ensure()
    return run_build(options, store, out, err)


def _find(store: State, name: str) -> dict[str, Any] | None:
    try:
        normalized: str | None = str(parse_reference(name))
    except BadReference:
        normalized = None
    return store.find_image(name, normalized)


def cmd_tag(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    source, target = args
    target_ref = _reference(target)
    image = _find(store, source)
    if image is None:
        shown = source if ":" in source or len(source) >= 12 else f"{source}:latest"
        err.write(f"Error response from daemon: No such image: {shown}\n")
        return 1
    store.set_tag(str(target_ref), image["Id"])
    return 0


def cmd_push(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    from .ecr import RegistryError, push

    reference = _reference(args[0])
    image = store.find_image(args[0], str(reference))
    if image is None:
        err.write(f"An image does not exist locally with the tag: {reference.name}\n")
        return 1
    try:
        result = push(reference, image, store, out)
    except RegistryError as error:
        out.flush()
        err.write(f"{error}\n")
        return 1
    digests = [d for d in image.get("RepoDigests", []) if not d.startswith(reference.name + "@")]
    image["RepoDigests"] = [*digests, f"{reference.name}@{result.digest}"]
    store.save_image(image)
    out.write(f"{reference.tag}: digest: {result.digest} size: {result.size}\n")
    return 0


def _inspect_object(store: State, image: dict[str, Any]) -> dict[str, Any]:
    """The fields of `docker image inspect` the sandbox knows, under Docker's names."""
    config = json.loads(store.blob_path(image["Id"]).read_text(encoding="utf-8"))
    tags = sorted(ref for ref, image_id in store.tags().items() if image_id == image["Id"])
    return {
        "Id": image["Id"],
        "RepoTags": tags,
        "RepoDigests": list(image.get("RepoDigests", [])),
        "Created": config.get("created", ""),
        "Config": config.get("config", {}),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": sum(int(layer["size"]) for layer in image["Layers"]),
        "RootFS": {"Type": "layers", "Layers": config.get("rootfs", {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": image.get("BuiltAt", "")},
    }


def cmd_inspect(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    template = (flags.get("format") or [""])[-1]
    if template and template != "json":
        err.write("ERROR: the ncf-tui sandbox builder prints `docker image inspect` as JSON only (no Go templates)\n")
        return 1
    found: list[dict[str, Any]] = []
    code = 0
    for name in args:
        image = _find(store, name)
        if image is None:
            err.write(f"Error: No such image: {name}\n")
            code = 1
            continue
        found.append(_inspect_object(store, image))
    out.write(json.dumps(found, indent=4) + "\n")
    return code


SERVER_VERSION = "ncf-tui-sandbox-builder"
_VERSION_FIELDS = {"{{.Server.Version}}": SERVER_VERSION, "{{.Client.Version}}": SERVER_VERSION}


def cmd_version(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    """`docker version`: this builder names itself as the server, so a build log says which built the image."""
    template = (flags.get("format") or [""])[-1]
    if not template:
        out.write(f"Client:\n Version:           {SERVER_VERSION}\n\n")
        out.write(f"Server: ncf-tui sandbox builder (no Docker Engine)\n Version:          {SERVER_VERSION}\n")
        return 0
    text = template
    for field_name, value in _VERSION_FIELDS.items():
        text = text.replace(field_name, value)
    if "{{" in text:
        err.write(f"ERROR: the ncf-tui sandbox builder fills only {' and '.join(_VERSION_FIELDS)} in --format\n")
        return 1
    out.write(text + "\n")
    return 0


def _ago(stamp: str) -> str:
    try:
        then = time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return "N/A"
    seconds = max(0, int(time.time() - then))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit} ago"
    if seconds >= 60:
        return "About a minute ago"
    if seconds < 1:
        return "Less than a second ago"
    return "1 second ago" if seconds == 1 else f"{seconds} seconds ago"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def cmd_images(flags: dict[str, list[str]], args: list[str], store: State, out: TextIO, err: TextIO) -> int:
    rows: list[tuple[str, str, str, str, str]] = []
    images = {image["Id"]: image for image in store.all_images()}
    for ref, image_id in sorted(store.tags().items()):
        image = images.get(image_id)
        if image is None:
            continue
        name, _, tag = ref.rpartition(":")
        if args and args[0] not in (name, ref):
            continue
        size = sum(int(layer["size"]) for layer in image["Layers"])
        rows.append((name, tag, image_id.removeprefix("sha256:")[:12], _ago(image.get("BuiltAt", "")), _size(size)))
    if flags.get("quiet"):
        for row in rows:
            out.write(row[2] + "\n")
        return 0
    header = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        out.write("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    return 0


COMMANDS: dict[str, Callable[[dict[str, list[str]], list[str], State, TextIO, TextIO], int]] = {
    "login": cmd_login,
    "build": cmd_build,
    "tag": cmd_tag,
    "push": cmd_push,
    "image inspect": cmd_inspect,
    "inspect": cmd_inspect,
    "version": cmd_version,
    "images": cmd_images,
    "image ls": cmd_images,
}

TOP_USAGE = """Usage:  docker [OPTIONS] COMMAND

The ncf-tui sandbox builder: the docker commands a CodeBuild buildspec needs, without a Docker engine.

Commands:
  build       Build an image from a Dockerfile (checked, smoke-tested natively)
  images      List images
  image       Manage images (inspect, ls)
  login       Log in to an ECR registry
  push        Upload an image to ECR (put_image)
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  version     Show which builder answers (this one names itself, not a Docker Engine)
"""


def _select(argv: list[str]) -> tuple[str, list[str]]:
    """The sub-command (`build`, `image inspect`, ...) and its arguments; raises UsageError if unknown."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise UsageError(TOP_USAGE, 0)
    first = argv[0]
    if first.startswith("-"):
        raise UsageError(f"unknown flag: {first.split('=')[0]}\nSee 'docker --help'.", 125)
    if first == "image":
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            raise UsageError("Usage:  docker image COMMAND\n\nManage images\n\nCommands:\n  inspect\n  ls", 0)
        name = f"image {argv[1]}"
        if name not in COMMANDS:
            raise UsageError(f"docker: 'image {argv[1]}' is not a docker command.\nSee 'docker --help'", 125)
        return name, argv[2:]
    if first not in COMMANDS:
        raise UsageError(f"docker: '{first}' is not a docker command.\nSee 'docker --help'", 125)
    return first, argv[1:]


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one docker command; return its exit code (Docker's: 0, 1, or 125 for a bad command line)."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    store = State.from_env()
    try:
        if store.first_use():
            err.write(BANNER + "\n")
            err.flush()
    except OSError as error:
        err.write(f"ncf-tui sandbox builder: cannot use state directory {store.root}: {error}\n")
        return 1
    try:
        name, rest = _select(argv)
        flags, args = parse_args(SPECS[name], rest)
        if os.environ.get(PRIVILEGED_ENV, "1").strip() == "0":
            err.write(NO_DAEMON + "\n")
            return 1
        return COMMANDS[name](flags, args, store, out, err)
    except UsageError as error:
        (out if error.code == 0 else err).write(f"{error}\n")
        return error.code
    except KeyboardInterrupt:
        return 130
    finally:
        out.flush()
        err.flush()
