"""Orchestration: Prefect flows and tasks, the CLI, deployments. The only package that imports Prefect."""
