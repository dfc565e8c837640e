"""``kairos console``: the campaign owner's page (``command.py`` starts it, ``app.py`` serves it).

``control.py`` reads and changes triggers as ``kairos triggers`` does, ``figures.py``
counts as ``kairos report`` does, ``preview.py`` replays as ``kairos replay --compare``
does, ``auth.py`` says who may do what; ``static/`` is the page (plain HTML, CSS and
JavaScript, charts drawn as inline SVG).
"""
