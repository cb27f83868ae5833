# An inference image with azinfer baked in, for those who build their own: vLLM's
# OpenAI image (the default image, azinfer.project.DEFAULT_IMAGE: torch, CUDA,
# vLLM, transformers, uvicorn) plus azinfer. The container app mounts the AI
# Toolkit share at /mount and runs the start script, which serves with this
# azinfer when the share holds none ('azinfer deploy' puts one there).
FROM docker.io/vllm/vllm-openai:v0.32.0-cu129
WORKDIR /opt/azinfer
COPY pyproject.toml README.md ./
COPY azinfer ./azinfer
COPY schemas ./schemas
# The image's torch, transformers and vLLM satisfy the serve extra: pip keeps them.
RUN pip install --no-cache-dir ".[serve]"
ENV AZINFER_MOUNT=/mount AZINFER_PORT=7860 HF_HUB_OFFLINE=1
EXPOSE 7860
# vLLM's image starts its own server; this one starts azinfer's.
ENTRYPOINT []
CMD ["azinfer", "serve"]
