# Production image: the official Airflow image plus this project's pinned requirements and code.
# Every component (api-server, scheduler, dag-processor, triggerer, celery worker) runs this image;
# docker-compose.yaml shows the topology and docs/deployment.md the settings.
#
#   docker build -t cstf-airflow:latest .
FROM apache/airflow:3.3.2-python3.11

LABEL org.opencontainers.image.title="ESR <-> Totara CSTF interface" \
      org.opencontainers.image.description="Apache Airflow DAGs: ESR Generic Outbound files <-> Totara Learn CSTF"

# The shared data volume's mount point, owned by the airflow user: a new named volume takes its
# ownership from the image, so the workers can write landing, staging, reports and outbox.
USER root
RUN mkdir -p /data/cstf && chown airflow:root /data/cstf && chmod 2770 /data/cstf

# The official image installs packages as the airflow user (never as root), into its user site.
USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt /opt/cstf/
# apache-airflow is pinned in requirements.txt to the base image's version, so pip never swaps Airflow
# itself; constraints.txt is the tested resolution of everything else.
RUN pip install --no-cache-dir -r /opt/cstf/requirements.txt -c /opt/cstf/constraints.txt

# Code and data-as-configuration; the simulators (sim/), tests and benchmarks are never shipped.
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/cstf/include/

# Trust settings are baked in from include/trusts; mount a folder over /opt/cstf/trusts (or set
# CSTF_TRUSTS_DIR) to manage them outside the image. Working folders default under AIRFLOW_HOME
# (the airflow user's); docker-compose.yaml points them at a volume every worker shares.
COPY --chown=airflow:root include/trusts/ /opt/cstf/trusts/
ENV CSTF_INCLUDE_DIR=/opt/cstf/include \
    CSTF_TRUSTS_DIR=/opt/cstf/trusts \
    CSTF_WORKDIR=/opt/airflow/cstf-work \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PYTHONPATH=/opt/airflow/plugins
