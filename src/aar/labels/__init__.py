"""The trusted label side: label store, secret salts, weak-model outputs, testbed cards and baselines.

Only the eval server and the admin path (``aar testbed prepare``, ``aar baselines``) import this
package. ``aar.w2s`` (what research agents import), the hub and the MCP tools never do; an
import-contract test enforces it.
"""
