<!doctype html>
<title>{{ $name }}</title>
<h1 id="greeting">Hello from {{ $name }}</h1>
<p id="versions">Laravel {{ $laravel }} on PHP {{ $php }}</p>
<a id="notes" href="/notes">notes</a>
