"""`ganforge export --lambda OUT/`: an AWS Lambda deployment package for a generator (AWS SAM).

OUT/ holds app.py (serve/aws_lambda.py verbatim) and the torch-free modules it imports, ganforge_latent.py
(ganforge/latent.py) and ganforge_request_core.py (serve/request_core.py): CODE_FILES, which need onnxruntime,
numpy and Pillow, no torch; a table model's package adds TABLE_CODE_FILES, the numpy decoder of its rows
(serve/table_rows.py as ganforge_table_rows.py, data/table_transforms.py as ganforge_table_transforms.py); a text
model's adds TEXT_CODE_FILES (serve/text_onnx.py, text/checks.py), model.text.onnx and model.tokenizer.json, and
needs the tokenizers wheel. Beside them: model.onnx (parity-checked against eager), model.json, the model
card, requirements.txt, template.yaml (SAM: one function behind an HTTP API), README.md (how to deploy and
call it), events/*.json (sample API Gateway events) and function.zip: the code, the model and, unless
vendor=False, the Linux wheels of the requirements (so `sam deploy` needs no build step). With
vendor=False, function/ holds the code and requirements.txt for `sam build` instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .. import latent
from ..artifacts.card import model_card, model_info, write_card
from ..artifacts.onnx import export_onnx
from ..data import table_transforms
from ..text import checks as text_checks
from . import aws_lambda, request_core, table_rows, text_onnx

# The handler's code in the package: {name there: source file}; app.py imports the other two by these names
CODE_FILES = {"app.py": aws_lambda.__file__, "ganforge_latent.py": latent.__file__,
              "ganforge_request_core.py": request_core.__file__}
# table models also ship the numpy decoder of their rows (app.py imports it when present)
TABLE_CODE_FILES = {"ganforge_table_rows.py": table_rows.__file__,
                    "ganforge_table_transforms.py": table_transforms.__file__}
# text models also ship the torch-free caption encoder (app.py imports it when present), beside model.text.onnx and
# model.tokenizer.json, and need the tokenizers wheel
TEXT_CODE_FILES = {"ganforge_text_onnx.py": text_onnx.__file__, "ganforge_text_checks.py": text_checks.__file__}
TEXT_REQUIREMENTS = ["tokenizers>=0.15,<1"]
UNZIPPED_LIMIT_BYTES = 262_144_000  # Lambda's 250 MB limit on a function's unzipped code (and layers)
REQUIREMENTS = ["onnxruntime>=1.20,<2", "numpy>=1.26,<3", "pillow>=10.1,<14"]
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}  # Lambda name -> wheel tag
# Lambda's python3.12+ runtimes run Amazon Linux 2023 (glibc 2.34). onnxruntime >= 1.20 publishes only
# manylinux_2_27/2_28 wheels, so manylinux2014 alone would find none: accept every tag glibc 2.34 runs.
WHEEL_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
EVENT_PARAMS = {
    "health": ("GET", "/health", None, None),
    "info": ("GET", "/v1/info", None, None),
    "generate": ("GET", "/v1/generate", {"seed": "42"}, None),
    "generate-grid": ("POST", "/v1/generate", None, {"n": 4, "seed": 7, "format": "json"}),
    "interpolate": ("POST", "/v1/interpolate", None, {"seed_a": 1, "seed_b": 2, "steps": 8}),
}

TABLE_EVENT_PARAMS = {  # a table model: rows as JSON and CSV, no interpolation
    **{k: v for k, v in EVENT_PARAMS.items() if k in ("health", "info", "generate")},
    "generate-rows": ("POST", "/v1/generate", None, {"n": 10, "seed": 7, "format": "json"}),
    "generate-csv": ("GET", "/v1/generate", {"n": "10", "seed": "7", "format": "csv"}, None),
}


class LambdaPackageError(ValueError):
    """The Lambda package cannot be built as asked; the message says what to change (a ValueError, so the
    CLI prints it as one line)."""


def sample_event(method: str, path: str, query: dict | None = None, body: dict | None = None) -> dict:
    """An API Gateway HTTP API (payload 2.0) event as AWS sends it to the function ($default stage)."""
    event = {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"accept": "*/*", "host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0",
                    "x-forwarded-proto": "https", **({"content-type": "application/json"} if body else {})},
        "requestContext": {"accountId": "123456789012", "apiId": "abc123", "domainName":
                           "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                                    "userAgent": "curl/8.5.0"},
                           "requestId": "JKJaXmPLvHcESHA=", "routeKey": f"{method} {path}", "stage": "$default",
                           "time": "10/Mar/2026:12:00:00 +0000", "timeEpoch": 1773144000000},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    if body is not None:
        event["body"] = json.dumps(body)
    return event


def requirements(onnx_path: Path) -> list[str]:
    """requirements.txt lines. onnxruntime 1.18 reads ONNX IR 10 and opset 21, so the floor of 1.20 fits what
    torch exports today; a model with a newer IR or opset needs at least the onnxruntime that checked it here."""
    import onnx
    import onnxruntime

    model = onnx.load(str(onnx_path), load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    lines = list(REQUIREMENTS)
    if model.ir_version > 10 or opset > 21:
        floor = ".".join(onnxruntime.__version__.split(".")[:2])
        lines[0] = f"onnxruntime>={floor},<2"
    return lines


def vendor_command(target: Path, requirements_file: Path, python: str, arch: str) -> list[str]:
    """The pip command that installs the requirements' Linux wheels for Lambda into `target`."""
    platforms = [arg for tag in WHEEL_TAGS for arg in ("--platform", f"{tag}_{ARCHES[arch]}")]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(target), *platforms, "--implementation", "cp", "--python-version", python,
            "--only-binary=:all:", "-r", str(requirements_file)]


def vendor_wheels(target: Path, requirements_file: Path, python: str, arch: str) -> None:
    """pip-install the Linux wheels into `target`; a clear error (naming --no-vendor) when pip fails."""
    done = subprocess.run(vendor_command(target, requirements_file, python, arch), capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise LambdaPackageError(
            f"could not download the Linux ({arch}, Python {python}) wheels of "
            f"{', '.join(requirements_file.read_text().split())} "
            f"for function.zip; pip said:\n{tail}\nConnect to PyPI, or export with --no-vendor (code and model "
            f"only; `sam build` then installs requirements.txt).")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts with this machine's shebang


def write_zip(files: dict[str, Path], zip_path: Path) -> int:
    """Write {name in zip: file} (folders recursively) to zip_path, world-readable and reproducible;
    raises LambdaPackageError when the unzipped size exceeds Lambda's limit. Returns the unzipped bytes."""
    entries = []
    for name, path in files.items():
        if path.is_dir():
            entries += [(f"{name}/{p.relative_to(path).as_posix()}".lstrip("/"), p)
                        for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
        else:
            entries.append((name, path))
    total = sum(p.stat().st_size for _, p in entries)
    if total > UNZIPPED_LIMIT_BYTES:
        biggest = sorted(entries, key=lambda e: -e[1].stat().st_size)[:3]
        raise LambdaPackageError(
            f"function.zip would unzip to {total / 2**20:.1f} MB, over Lambda's limit of "
            f"{UNZIPPED_LIMIT_BYTES / 2**20:.0f} MB (largest: "
            + ", ".join(f"{n} {p.stat().st_size / 2**20:.1f} MB" for n, p in biggest)
            + "); export with --no-vendor and ship the dependencies as a Lambda layer, or use a container image")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16  # Lambda needs world-readable files
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return total


def sam_template(info: dict, *, code_uri: str, python: str, arch: str, memory: int, timeout: int) -> str:
    """template.yaml: one function behind an HTTP API, with MemorySize/Timeout/MaxImages parameters."""
    what = f"ganforge {info['family']} generator ({'x'.join(map(str, info['shape']))} {info['kind']})"
    max_n_text = {"table": "Most table rows one request may ask for (n)",
                  "points": "Most points one request may ask for (n, steps)"}.get(
        info["kind"], "Most images one request may ask for (n, steps)")
    routes = [("Health", "GET", "/health"), ("Info", "GET", "/v1/info"), ("GenerateGet", "GET", "/v1/generate"),
              ("GeneratePost", "POST", "/v1/generate"), ("InterpolateGet", "GET", "/v1/interpolate"),
              ("InterpolatePost", "POST", "/v1/interpolate"), ("Other", "ANY", "/{proxy+}")]
    events = "".join(f"""        {name}:
          Type: HttpApi
          Properties:
            ApiId: !Ref GeneratorApi
            Path: {path}
            Method: {method}
""" for name, method, path in routes)
    return f"""AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: {what} on AWS Lambda (onnxruntime + numpy) behind an API Gateway HTTP API. Written by ganforge export --lambda.

Parameters:
  MemorySize:
    Type: Number
    Default: {memory}
    MinValue: 128
    MaxValue: 10240
    Description: Function memory in MB (128-10240); CPU grows with it (1769 MB = one vCPU).
  Timeout:
    Type: Number
    Default: {timeout}
    MinValue: 1
    MaxValue: 30
    Description: Function timeout in seconds (1-30; API Gateway HTTP APIs wait at most 30 s).
  MaxImages:
    Type: Number
    Default: {aws_lambda.DEFAULT_MAX_N}
    MinValue: 1
    MaxValue: 256
    Description: {max_n_text}; GANFORGE_MAX_N in the function.

Resources:
  GeneratorApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: ["*"]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-seed]
      DefaultRouteSettings:
        ThrottlingBurstLimit: 20
        ThrottlingRateLimit: 10

  GeneratorFunction:
    Type: AWS::Serverless::Function
    Properties:
      Description: {what}
      CodeUri: {code_uri}
      Handler: app.handler
      Runtime: python{python}
      Architectures: [{arch}]
      MemorySize: !Ref MemorySize
      Timeout: !Ref Timeout
      Environment:
        Variables:
          GANFORGE_MAX_N: !Ref MaxImages
      Events:
{events}
  GeneratorLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${{GeneratorFunction}}"
      RetentionInDays: 14

Outputs:
  ApiUrl:
    Description: Base URL of the API; try ApiUrl + v1/info
    Value: !Sub "https://${{GeneratorApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"
  FunctionName:
    Description: The Lambda function (for sam logs and the console)
    Value: !Ref GeneratorFunction
"""


def deploy_guide() -> str:
    """The step-by-step deployment guide; docs/lambda.md holds the same text (a test keeps them equal)."""
    return GUIDE


def build_lambda(sampler, out: Path, *, vendor: bool = True, opset: int | None = None, python: str = "3.12",
                 arch: str = "x86_64", memory: int = 1024, timeout: int = 30) -> dict:
    """Write the Lambda package of `sampler`'s generator into `out` (see the module docstring)."""
    if sampler.is_translation:  # image-to-image models need uploads, not seeds
        raise LambdaPackageError(f"the Lambda handler generates from seeds; {sampler.family.name} translates "
                                 f"images: export it with --onnx, or run it with `ganforge translate`")
    start = time.perf_counter()
    out = Path(out)
    if arch not in ARCHES:
        raise LambdaPackageError(f"arch must be x86_64 or arm64, got {arch!r}")
    if python not in ("3.12", "3.13"):
        raise LambdaPackageError(f"python must be 3.12 or 3.13 (Lambda runtimes on Amazon Linux 2023, which the "
                                 f"current onnxruntime wheels need), got {python!r}")
    if not 128 <= memory <= 10240 or not 1 <= timeout <= 30:
        raise LambdaPackageError(f"memory must be 128..10240 MB and timeout 1..30 s; got {memory} and {timeout}")
    if out.exists() and any(out.iterdir()) and not (out / "template.yaml").exists():
        raise LambdaPackageError(f"{out} is not empty and holds no earlier Lambda package; give a new folder")
    arch = "arm64" if arch == "aarch64" else arch

    with tempfile.TemporaryDirectory(prefix="ganforge-lambda-") as tmp:  # OUT changes only when all succeeded
        stage, site = Path(tmp) / "package", Path(tmp) / "site-packages"
        onnx_result = export_onnx(sampler, stage / "model.onnx", opset=opset)
        text = sampler.takes_text
        reqs = requirements(onnx_result.path) + (TEXT_REQUIREMENTS if text else [])
        (stage / "requirements.txt").write_text("\n".join(reqs) + "\n")
        if vendor:
            vendor_wheels(site, stage / "requirements.txt", python, arch)
        onnx_result.path = out / "model.onnx"  # where it will be
        table = sampler.spec.kind == "table"
        if table:
            onnx_result.table_state = out / "model.table.json"
        if text:
            onnx_result.text_encoder = out / "model.text.onnx"
        exported = onnx_result.as_dict()
        code_files = {**CODE_FILES, **(TABLE_CODE_FILES if table else {}), **(TEXT_CODE_FILES if text else {})}
        for name, source in code_files.items():
            shutil.copyfile(source, stage / name)
        info = model_info(sampler)
        (stage / "model.json").write_text(json.dumps(info, indent=2) + "\n")
        write_card(model_card(sampler, exported), stage / "model_card")
        models = ("model.onnx", "model.json", *(("model.text.onnx", "model.tokenizer.json") if text else ()))
        code = {name: stage / name for name in (*code_files, *models)}
        unzipped = write_zip({**code, **({"": site} if vendor else {})}, stage / "function.zip")
        if not vendor:  # sam build cannot build from a zip: it installs requirements.txt into a copy of function/
            (stage / "function").mkdir()
            for name, path in {**code, "requirements.txt": stage / "requirements.txt"}.items():
                shutil.copyfile(path, stage / "function" / name)
        (stage / "template.yaml").write_text(sam_template(info, code_uri="function.zip" if vendor else "function/",
                                                          python=python, arch=arch, memory=memory, timeout=timeout))
        (stage / "events").mkdir()
        events = dict(TABLE_EVENT_PARAMS if table else EVENT_PARAMS)
        if text and info["text"]["preview_captions"]:
            events["generate-text"] = ("POST", "/v1/generate", None,
                                       {"n": 4, "seed": 7, "text": info["text"]["preview_captions"][0]})
        for name, (method, path, query, body) in events.items():
            event = sample_event(method, path, query, body)
            (stage / "events" / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
        (stage / "README.md").write_text(_readme(info, vendor, unzipped) + "\n" + deploy_guide())

        out.mkdir(parents=True, exist_ok=True)
        for old in [out / "function", out / "events", *(out / p.name for p in stage.iterdir())]:
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
        for item in sorted(stage.iterdir()):
            shutil.move(str(item), out / item.name)
    return {"zip": str(out / "function.zip"), "zip_mb": round((out / "function.zip").stat().st_size / 2**20, 2),
            "unzipped_mb": round(unzipped / 2**20, 2), "limit_mb": round(UNZIPPED_LIMIT_BYTES / 2**20),
            "vendored": vendor, "app": str(out / "app.py"), "template": str(out / "template.yaml"),
            "readme": str(out / "README.md"), "requirements": (out / "requirements.txt").read_text().split(),
            "onnx": exported, "seconds": round(time.perf_counter() - start, 2)}


def _readme(info: dict, vendored: bool, unzipped: int) -> str:
    classes = ", ".join(info["class_names"]) or "none (unconditional)"
    wheels = ", and the Linux wheels of requirements.txt" if vendored else ""
    table = TABLE_CODE_FILES if info["kind"] == "table" else {}
    text = {**TEXT_CODE_FILES, "model.text.onnx": "", "model.tokenizer.json": ""} if "text" in info else {}
    code = ", ".join(f"`{name}`" for name in (*CODE_FILES, *table, *text, "model.onnx", "model.json"))
    rows = [("`function.zip`", f"what Lambda runs: {code}{wheels} ({unzipped / 2**20:.1f} MB unzipped of Lambda's "
                               f"250 MB)"),
            ("`app.py`", "the handler, `app.handler` (onnxruntime + numpy + Pillow; no torch)"),
            ("`template.yaml`", "AWS SAM template: the function, an HTTP API, a log group"),
            ("`events/*.json`", "sample API Gateway events for `sam local invoke`"),
            ("`model.onnx`, `model.json`, `model_card.md`", "the generator, its description and its model card")]
    if not vendored:
        rows.append(("`function/`", "the code and requirements.txt that `sam build` packages"))
    note = "" if vendored else ("\nThis package was exported with `--no-vendor` (no wheels in function.zip): run "
                                "`sam build` before every `sam deploy` below.\n")
    return (f"# {info['family']} generator on AWS Lambda\n\nWritten by `ganforge export --lambda` ({info['kind']} "
            f"{'x'.join(map(str, info['shape']))}; classes: {classes}; training step {info['step']}).\n\n"
            "| file | what |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows) + note
            + (TABLE_NOTE.format(columns=", ".join(info["table"]["columns"])) if table else "")
            + (TEXT_NOTE.format(caption=(info["text"]["preview_captions"] or ["a caption"])[0]) if text else ""))


TEXT_NOTE = """
This model draws images from captions. `/v1/generate` and `/v1/interpolate` take `text` (one caption for every
image, at most 4,096 characters); without it the images cycle through the model's preview captions, listed in
`/v1/info` under `text.preview_captions`. The handler encodes captions with `ganforge_text_onnx.py`
(`tokenizers` + onnxruntime, the frozen encoder `model.text.onnx` and `model.tokenizer.json`). The encoder makes
the package about 90 MB larger. For example: `curl -X POST "$URL/v1/generate" -H 'content-type:
application/json' -d '{{"text": "{caption}", "n": 4, "seed": 7}}' --output grid.png`.
"""


TABLE_NOTE = """
This model generates table rows ({columns}). The ONNX graph outputs encoded rows; the handler decodes them
in numpy (`ganforge_table_rows.py`) into the training table's columns, units and types. `/v1/generate`
takes `n` (rows, at most MaxImages), `seed` and `format`: `json` (the default; `{{"seed", "n", "columns",
"kinds", "rows": [[...], ...]}}`, one list per row) or `csv` (text/csv). The image options (class,
truncation, codes, png, npy) and `/v1/interpolate` answer 422; the examples below that ask for images do not
apply. For example: `curl "$URL/v1/generate?n=10&seed=7&format=csv"`.
"""


# The deployment guide (docs/lambda.md is the same text; tests/test_lambda.py keeps them equal).
GUIDE = r"""## Deploy to AWS Lambda with `sam deploy`

`ganforge export --ckpt RUN --lambda OUT/` writes a ready-to-deploy AWS SAM project: `OUT/template.yaml`
(one Lambda function behind an API Gateway HTTP API), `OUT/function.zip` (the handler `app.handler`, the ONNX
generator and, unless you passed `--no-vendor`, the Linux wheels of onnxruntime, numpy and Pillow) and sample
events in `OUT/events/`. The function runs on onnxruntime + numpy: no torch, no GPU.

### 1. Install the tools (once)

1. An AWS account and credentials on this machine: install the AWS CLI, then `aws configure` (access key,
   secret, default region such as `eu-west-1`) or `aws configure sso`. Check with `aws sts get-caller-identity`.
2. The AWS SAM CLI (`sam --version` should print 1.100 or newer): see
   https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html
3. Docker, only if you want to run the function locally (`sam local`) or build a `--no-vendor` export on a
   machine without Python 3.12.

### 2. Try it locally (optional)

Without Docker, in a Python with `onnxruntime numpy pillow` installed:

```bash
cd OUT
python -c "import json, app; r = app.handler(json.load(open('events/info.json')), None); print(r['statusCode'], r['body'])"
```

With Docker, in the Lambda runtime itself:

```bash
cd OUT
sam local invoke GeneratorFunction --event events/generate-grid.json   # one event, prints the response
sam local start-api                                                     # the whole API on http://127.0.0.1:3000
curl "http://127.0.0.1:3000/v1/generate?seed=42" -o sample.png
```

`events/` holds health, info, generate (GET with a query string), generate-grid (POST with a JSON body) and
interpolate events, shaped the way API Gateway (HTTP API, payload format 2.0) sends them; copy one and edit
its `queryStringParameters` or `body` to try other requests.

### 3. Deploy

```bash
cd OUT
sam build            # only for a --no-vendor export (add --use-container without a local Python 3.12)
sam deploy --guided
```

`sam deploy --guided` asks a few questions the first time; the answers go to `samconfig.toml`, so later
deployments are a plain `sam deploy`:

1. **Stack Name**: a name for this deployment, e.g. `ganforge-fashion`.
2. **AWS Region**: where to run it, e.g. `eu-west-1`.
3. **Parameter MemorySize** (128-10240 MB, default 1024): more memory also buys more CPU (1769 MB is one
   vCPU), so larger models answer faster with more.
4. **Parameter Timeout** (1-30 s, default 30): API Gateway HTTP APIs wait at most 30 s.
5. **Parameter MaxImages** (default 16): the most images one request may ask for.
6. **Confirm changes before deploy**: `y` shows the change set first.
7. **Allow SAM CLI IAM role creation**: `y` (the function needs a role to write its logs).
8. **Disable rollback**: `n`.
9. **GeneratorFunction has no authentication. Is this okay?**: `y` for a public demo. The API is throttled
   (10 requests/s, bursts of 20) but anyone with the URL can call it; see step 6 to restrict it.
10. **Save arguments to configuration file**: `y`, then accept the default file name and environment.

SAM uploads `function.zip` to an S3 bucket it manages (so the 50 MB direct-upload limit does not apply; the
limit is 250 MB unzipped, which the export checks) and creates the stack. The last lines print the outputs:

```
Key    ApiUrl
Value  https://abc123.execute-api.eu-west-1.amazonaws.com/
```

### 4. Call it

```bash
URL=https://abc123.execute-api.eu-west-1.amazonaws.com   # ApiUrl, without the trailing slash
curl $URL/health                                          # {"status": "ok"}
curl $URL/v1/info                                         # family, image shape, classes, latent codes, max_n
curl "$URL/v1/generate?seed=42" -o sample.png             # one image; the same seed gives the same image
curl "$URL/v1/generate?n=16&seed=7" -o grid.png           # a grid, 8 images a row
curl -X POST $URL/v1/generate -H 'content-type: application/json' \
     -d '{"n": 4, "seed": 7, "truncation": 0.7, "format": "json"}'     # base64 PNG per image
curl -X POST $URL/v1/generate -H 'content-type: application/json' \
     -d '{"n": 2, "class": "sneaker", "format": "npy"}' -o x.npy       # float32 (N, C, H, W) in [-1, 1]
curl -X POST $URL/v1/interpolate -H 'content-type: application/json' \
     -d '{"seed_a": 1, "seed_b": 2, "steps": 8}' -o strip.png
```

Parameters (query string for GET, JSON object for POST): `n` (1..MaxImages), `seed` (0..2147483647; random
when left out, echoed in the `x-seed` header), `class` (index or name, conditional models), `truncation`
(0 < psi <= 1), `codes` (InfoGAN latent codes: `{"c0": 3}`, or `c0:3,c1:0.5` in a query string), `format`
(`png`, `npy` or `json`); `/v1/interpolate` takes `seed_a`, `seed_b` and `t` (one image) or `steps` (a strip).
Mistakes answer 422 with `{"detail": "..."}` saying what to change; bad JSON 400; bodies over 64 KB 413.

### 5. Watch, update, remove

```bash
sam logs --stack-name ganforge-fashion --tail    # the function's CloudWatch logs
sam deploy                                       # after re-exporting into the same folder (run sam build first for --no-vendor)
sam delete --stack-name ganforge-fashion         # remove the function, the API and the log group
```

### 6. Before real traffic

- A cold start imports onnxruntime, numpy and Pillow and loads the model once per container (on a 2-core
  x86 machine: 0.3 s to import, 0.13 s for the first request of a 3 MB Fashion-MNIST DCGAN, 7 ms for the
  next 4-image request; expect more on a small Lambda). Provisioned concurrency removes cold starts at a cost.
- To restrict access, add an authorizer to `GeneratorApi` in `template.yaml` (JWT or IAM; see the SAM
  documentation of `AWS::Serverless::HttpApi`), or narrow `CorsConfiguration.AllowOrigins`.
- Lambda answers at most 6 MB: ask for PNG grids rather than large `npy` batches.
"""
