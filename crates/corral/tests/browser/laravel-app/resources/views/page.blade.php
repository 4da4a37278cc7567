@extends('layouts.main')

@section('title', 'Items')

@section('content')
  <h1 id="greeting">Hello from {{ $name }}</h1>
  <p id="visits">{{ $visits }}</p>
  <table>
    @foreach ($items as $item)
      <tr class="{{ $loop->even ? 'even' : 'odd' }}">
        <td>{{ $item['id'] }}</td>
        <td>{{ $item['title'] }}</td>
        <td>{{ number_format($item['price'], 2) }}</td>
      </tr>
    @endforeach
  </table>
  <form method="post" action="{{ url('/notes') }}">
    @csrf
    <input name="text">
  </form>
@endsection
