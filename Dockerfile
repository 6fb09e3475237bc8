# Production image: the official Airflow image with this project's pinned requirements and code.
FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt /opt/cstf/
RUN pip install --no-cache-dir -r /opt/cstf/requirements.txt -c /opt/cstf/constraints.txt
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/cstf/include/
ENV CSTF_INCLUDE_DIR=/opt/cstf/include \
    CSTF_TRUSTS_DIR=/opt/cstf/include/trusts \
    PYTHONPATH=/opt/airflow/plugins
