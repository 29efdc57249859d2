"""Image building: Dockerfiles executed over the image store, RUN steps as containers."""
