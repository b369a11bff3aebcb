"""Logger, Tracer and Metrics, created once and imported everywhere.

Service name and namespace come from POWERTOOLS_* variables set in the template's Globals.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
