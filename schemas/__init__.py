"""JSON Schemas of the project files azinfer reads and writes (package data, installed as ``azinfer.schemas``)."""
