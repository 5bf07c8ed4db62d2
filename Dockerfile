# pysparknet in a container: a build stage that builds Caffe and the pysparknet
# wheel, and a runtime stage with Java, Python, the wheel and Caffe's runtime
# libraries only (no compilers), running as a non-root user.
#
#   docker build -t pysparknet .                                  # CPU
#   docker build -t pysparknet:cuda --build-arg PYSPARKNET_CUDA=ON \
#     --build-arg BASE_IMAGE=nvidia/cuda:13.0.0-devel-ubuntu24.04 \
#     --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04 .   # GPU
#
# The base images are build arguments: any Debian bookworm (or Ubuntu) image
# with apt works, such as one made locally with debootstrap and `docker import`
# where no registry is reachable (tests/test_docker.py does that).
ARG BASE_IMAGE=debian:bookworm-slim
ARG RUNTIME_IMAGE=${BASE_IMAGE}

FROM ${BASE_IMAGE} AS build
ARG PYSPARKNET_CUDA=OFF
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config patch ca-certificates \
      python3 python3-venv python3-dev \
      protobuf-compiler libprotobuf-dev libgoogle-glog-dev libgflags-dev \
      libboost-system-dev libboost-thread-dev libboost-filesystem-dev \
      libopenblas-dev liblmdb-dev libleveldb-dev libsnappy-dev libhdf5-dev \
      libopencv-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/build && /opt/build/bin/pip install -q --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md CMakeLists.txt ./
COPY native native
COPY pysparknet pysparknet
COPY docker/runtime-packages.sh /usr/local/bin/
# The wheel (with its Caffe build inside) and every dependency's wheel: the
# runtime stage installs from these alone, and the distribution packages that
# the wheel's native libraries load (docker/runtime-packages.sh).
RUN extra=$( [ "$PYSPARKNET_CUDA" = ON ] && echo "[cuda]" || true ) \
    && if [ -n "$extra" ]; then \
      python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['cuda']))" \
        | xargs /opt/build/bin/pip install -q; \
    fi \
    && PYSPARKNET_CUDA=$PYSPARKNET_CUDA /opt/build/bin/pip wheel -q -w /wheels ".$extra" \
    && runtime-packages.sh /wheels/pysparknet-*.whl > /wheels/runtime-packages.txt \
    && cat /wheels/runtime-packages.txt

FROM ${RUNTIME_IMAGE} AS runtime
ARG PYSPARKNET_CUDA=OFF
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      python3 python3-venv openjdk-17-jre-headless procps tini dataset-fashion-mnist \
      $(cat /wheels/runtime-packages.txt) \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/pysparknet \
    && /opt/pysparknet/bin/pip install -q --no-index --find-links /wheels \
         "pysparknet$( [ "$PYSPARKNET_CUDA" = ON ] && echo '[cuda]' || true )" \
    && rm -rf /wheels /root/.cache
COPY docker/entrypoint.sh docker/gpu-discovery.sh /opt/pysparknet/docker/
RUN useradd --create-home --uid 10001 sparknet && mkdir -p /out /rdd && chown sparknet /out /rdd
ENV PATH=/opt/pysparknet/bin:$PATH PYSPARK_PYTHON=/opt/pysparknet/bin/python
USER sparknet
WORKDIR /home/sparknet
ENTRYPOINT ["tini", "--", "/opt/pysparknet/docker/entrypoint.sh"]
CMD ["sparknet", "info"]
