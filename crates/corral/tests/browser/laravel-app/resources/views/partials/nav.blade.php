<nav>
  <a href="{{ url('/') }}">home</a>
  <a href="{{ route('page') }}">page</a>
  <a href="{{ url('/notes') }}">notes</a>
</nav>
