"""Engine errors in the dialog's words: the field an error is about becomes the label of the
Processing parameter that set it (the QGIS counterpart of the CLI's plugin.commands.flags)."""


def parameter_labels(algorithm, fields):
    """{field: label} from ``fields`` ({request field: parameter name}) for the parameters
    ``algorithm`` declares; the label is what the dialog shows."""
    labels = {}
    for field, name in fields.items():
        definition = algorithm.parameterDefinition(name)
        if definition is not None:
            labels[field] = definition.description()
    return labels


def describe_error(error, labels):
    """``error`` (a CopGenError) with its field shown as its parameter's label (``labels``:
    {field: label}; the most specific field wins, see CopGenError.describe)."""
    return error.describe(labels)
