# The inference image: CUDA PyTorch runtime + azinfer[serve]. The container app
# mounts the AI Toolkit share at /mount and runs the start script, which finds
# azinfer installed here and skips any pip install.
FROM docker.io/pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime
WORKDIR /opt/azinfer
COPY pyproject.toml README.md ./
COPY azinfer ./azinfer
COPY schemas ./schemas
# torch comes from the base image; pip keeps it because it satisfies the pin.
RUN pip install --no-cache-dir ".[serve]"
ENV AZINFER_MOUNT=/mount AZINFER_PORT=7860 HF_HUB_OFFLINE=1
EXPOSE 7860
CMD ["azinfer", "serve"]
