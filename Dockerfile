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
# A proxy's CA, if the build needs one to reach PyPI (docker/ca-certificates/README.md).
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/build && /opt/build/bin/pip install -q --upgrade pip
WORKDIR /src
COPY pyproject.toml ./
COPY native native
# Caffe first, in a layer of its own: changes to the Python code reuse it. A CUDA
# build takes cuBLAS, cuRAND and cuDNN from PyPI's nvidia-* wheels (the [cuda] extra).
RUN if [ "$PYSPARKNET_CUDA" = ON ]; then \
      /opt/build/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['cuda']))" \
        | xargs /opt/build/bin/pip install -q \
      && /opt/build/bin/python native/caffe/build_caffe.py --cuda; \
    else /opt/build/bin/python native/caffe/build_caffe.py; fi
COPY README.md CMakeLists.txt ./
COPY pysparknet pysparknet
COPY docker/runtime-packages.sh /usr/local/bin/
# The wheel (with the Caffe build inside) and every dependency's wheel: the
# runtime stage installs from these alone, and the distribution packages that
# the wheel's native libraries load (docker/runtime-packages.sh).
RUN extra=$( [ "$PYSPARKNET_CUDA" = ON ] && echo "[cuda]" || true ) \
    && export PYSPARKNET_CUDA_SITE=$(/opt/build/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && PYSPARKNET_CUDA=$PYSPARKNET_CUDA /opt/build/bin/pip wheel -q -w /wheels ".$extra" \
    && runtime-packages.sh /wheels/pysparknet-*.whl > /wheels/runtime-packages.txt \
    && cat /wheels/runtime-packages.txt

# The runtime's system: Java, Python, and the packages the wheel's libraries load,
# without their docs, man pages and translations (dpkg-nodoc.cfg, as in
# debian:bookworm-slim), apt's lists or its downloaded .debs (a base without
# debian's docker-clean apt setting keeps them). man1 exists for the links that
# openjdk's set-up makes.
FROM ${RUNTIME_IMAGE} AS runtime-base
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
COPY docker/dpkg-nodoc.cfg /etc/dpkg/dpkg.cfg.d/pysparknet-nodoc
COPY --from=build /wheels/runtime-packages.txt /tmp/
RUN mkdir -p /usr/share/man/man1 && apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
      python3 python3-venv openjdk-17-jre-headless procps tini dataset-fashion-mnist \
      $(cat /tmp/runtime-packages.txt) \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && useradd --create-home --uid 10001 sparknet && mkdir -p /out /rdd \
    && chown sparknet /out /rdd

# pysparknet and its dependencies from the wheels alone (no network), in a stage
# of its own so that the wheels never become a layer of the final image.
# Then out of the venv what runs nowhere (docker/slim-venv.sh: test suites, the
# jars of Spark's Hive, Kubernetes and YARN parts).
FROM runtime-base AS install
ARG PYSPARKNET_CUDA=OFF
COPY --from=build /wheels /wheels
COPY docker/slim-venv.sh /usr/local/bin/
RUN python3 -m venv /opt/pysparknet \
    && /opt/pysparknet/bin/pip install -q --no-index --find-links /wheels \
         "pysparknet$( [ "$PYSPARKNET_CUDA" = ON ] && echo '[cuda]' || true )" \
    && slim-venv.sh /opt/pysparknet

FROM runtime-base AS runtime
COPY --from=install /opt/pysparknet /opt/pysparknet
COPY docker/entrypoint.sh docker/gpu-discovery.sh /opt/pysparknet/docker/
ENV PATH=/opt/pysparknet/bin:$PATH PYSPARK_PYTHON=/opt/pysparknet/bin/python
USER sparknet
WORKDIR /home/sparknet
ENTRYPOINT ["tini", "--", "/opt/pysparknet/docker/entrypoint.sh"]
CMD ["sparknet", "info"]
