"""The Function App entry point the Python worker indexes (v2 programming model).

Each trigger lives in a blueprint under `functions/`; this module only registers them.
"""

import azure.functions as func

from functions.http import bp as http_bp
from functions.positions import bp as positions_bp
from functions.risk import bp as risk_bp
from functions.signals import bp as signals_bp

app = func.FunctionApp()
app.register_functions(signals_bp)
app.register_functions(risk_bp)
app.register_functions(positions_bp)
app.register_functions(http_bp)
