"""The Functions app: registers the trigger blueprints, nothing else."""

import azure.functions as func

from functions.convert import bp as convert_bp
from functions.decimate import bp as decimate_bp
from functions.operations import bp as operations_bp
from functions.seams import bp as seams_bp

app = func.FunctionApp()
app.register_functions(decimate_bp)
app.register_functions(convert_bp)
app.register_functions(operations_bp)
app.register_functions(seams_bp)
