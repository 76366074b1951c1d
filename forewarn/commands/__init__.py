"""CLI command groups, one module per area. Each module exposes ``register(app)``.

These modules import only typer and the core at module level; each command imports its process
package inside its body, so a broken component cannot break another's command or `--help`.
"""
