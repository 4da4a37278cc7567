<!doctype html>
<title>notes</title>
<form method="post" action="/notes">
  <input id="text" name="text">
  <button id="save" type="submit">save</button>
</form>
<p id="saved">{{ $saved ?? '(nothing saved)' }}</p>
