# The Ray cluster's image (KubeRay's RayCluster in deploy/k8s/ray) and that of the bundle
# policy runner driving it. Ray's own image underneath, so the head and workers have what
# KubeRay expects of a Ray container; Ledgerflow and the converters on top. Client and
# cluster run the same image, so their Ray and Python versions are equal, as Ray Client
# requires; RayCluster.spec.rayVersion names the same RAY_VERSION (the tests check both).
# Add the frameworks your models and jobs use (torch, tensorflow-cpu) to the pip line.
#   docker build -f deploy/ray.Dockerfile -t ledgerflow-ray .
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311
ARG RAY_VERSION

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Ray's images run as the user `ray` (1000, group users); the build writes beside the sources.
WORKDIR /home/ray/ledgerflow
COPY --chown=1000:100 pyproject.toml setup.py README.md ./
COPY --chown=1000:100 events/ events/
COPY --chown=1000:100 services/ services/
COPY --chown=1000:100 sdk/ sdk/
COPY --chown=1000:100 workers/ workers/
# The services' extras (the policy runner reads Kafka, PostgreSQL and S3), the converters,
# and Ray pinned to the image's own version so pip never swaps it.
RUN pip install ".[distributed,bundles,sklearn]" "ray[default,train]==${RAY_VERSION}"
WORKDIR /home/ray
