from django import template

register = template.Library()


def cell_text(value):
    """One cell as both the table and the CSV export show it."""
    if value is None:
        return ""
    return str(value)


register.filter("cell", cell_text)


@register.filter
def get_item(mapping, key):
    return mapping.get(key)
