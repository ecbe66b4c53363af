"""Printed receipts: a device-neutral document, its layouts, and its renderers.

``layout`` builds a ``document.Document`` from plain views (ticket, copy, closure);
``escpos_render``, ``text_render`` and ``png_render`` turn it into printer bytes, text and PNG.
"""
