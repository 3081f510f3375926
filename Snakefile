# memnet: the replication of Memory Networks (Ruiz & Gupta, 2024) as one DAG.
#   snakemake --cores all                               # the paper's experiments (config/config.yaml)
#   snakemake --cores all --configfile config/quick.yaml  # a small version of each
import os
import sys
from pathlib import Path

from memnet.pipeline.config import validate

REPO = Path(workflow.basedir)


envvars:
    "PATH",


# Jobs call the `memnet` command of the environment that runs Snakemake, activated or not.
os.environ["PATH"] = (
    f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
)

# A --configfile replaces the default rather than merging into it, so that quick.yaml's short lists stay short.
if not workflow.overwrite_configfiles:

    configfile: REPO / "config/config.yaml"


validate(config, REPO / "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


# Rules of your own: every workflow/rules/extra/*.smk, in name order (docs/extending.md).
for extra_rules in sorted((REPO / "workflow/rules/extra").glob("*.smk")):

    include: extra_rules


# Every metrics file is a target, so that one deleted by hand is made again.
rule all:
    default_target: True
    input:
        METRICS,
        rules.aggregate.output,
        REPORT_OUTPUTS,
